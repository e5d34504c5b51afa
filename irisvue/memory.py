"""glibc malloc settings for long-running, multi-threaded worker processes.

Called from gunicorn.conf.py (in the arbiter, so every forked worker inherits
it). Two of glibc's defaults make a threaded Python server's RSS drift above
what it really holds:

- each thread may get its own malloc arena (up to 8 per core), and memory a
  thread frees stays in its arena; with the GIL, more arenas buy nothing;
- the mmap threshold adapts upwards after a large block is freed, so the
  next 5 MiB upload part comes from the heap, where fragmentation keeps it.

Pinning the threshold at 1 MiB returns every large buffer (upload parts,
encryption segments) to the kernel when it is freed.
"""

from __future__ import annotations

import ctypes
import sys

M_MMAP_THRESHOLD = -3  # glibc <malloc.h>
M_ARENA_MAX = -8

DEFAULT_MMAP_THRESHOLD = 1024 * 1024
DEFAULT_ARENA_MAX = 2


def tune_malloc(
    mmap_threshold: int = DEFAULT_MMAP_THRESHOLD, arena_max: int = DEFAULT_ARENA_MAX
) -> bool:
    """Apply the settings when running on glibc; returns whether they were applied."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl (Alpine) and others: keep their defaults
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, arena_max)) and bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold))
