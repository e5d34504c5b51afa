"""irisvue.memory.tune_malloc: freed large buffers really go back to the kernel."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Large blocks with small long-lived allocations between them: the pattern of
# concurrent uploads (5 MiB parts, 1 MiB slabs) next to request objects.
PROGRAM = """
import sys
def rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
if sys.argv[1] == "tuned":
    from irisvue.memory import tune_malloc
    assert tune_malloc()
before = rss_mib()
kept = []
for _ in range(10):
    blocks = []
    for _ in range(8):
        blocks.append(bytearray(2 * 1024 * 1024))
        kept.append(bytearray(200 * 1024))
    del blocks
print(rss_mib() - before)
"""
KEPT_MIB = 10 * 8 * 200 / 1024


def _growth(mode: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True, check=True
    )
    return float(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_freed_large_blocks_are_returned_only_when_tuned():
    tuned, default = _growth("tuned"), _growth("default")

    print(f"\nRSS growth holding {KEPT_MIB:.1f} MiB: tuned {tuned:.1f}, default {default:.1f}")
    assert tuned < KEPT_MIB + 4
    # glibc's adaptive mmap threshold is what the tuning fixes: without it the
    # freed blocks stay in the heap between the kept ones.
    assert default > tuned + 8
