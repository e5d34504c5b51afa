"""Memory and CPU of process trees (a gunicorn arbiter and its workers, an RQ worker and
its cron process and work horses), read from /proc."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Sequence
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def parents() -> dict[int, int]:
    """pid -> parent pid of every process (one pass over /proc)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            found[int(stat.parent.name)] = int(_stat(int(stat.parent.name))[1])
        except (OSError, ValueError, IndexError):
            continue
    return found


def children(pid: int, table: dict[int, int] | None = None) -> list[int]:
    """Live child processes of `pid` (a gunicorn arbiter's are its workers), sorted:
    /proc/<pid>/task/*/children (cheap) when the kernel has it, else a pass over /proc."""
    if table is None:
        try:
            found: set[int] = set()
            for task in Path(f"/proc/{pid}/task").iterdir():
                found.update(int(child) for child in (task / "children").read_text().split())
            return sorted(found)
        except (OSError, ValueError):
            table = parents()
    return sorted(child for child, parent in table.items() if parent == pid)


def title(pid: int) -> str:
    """The process's command line (RQ and gunicorn set descriptive titles), shortened."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:60]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of `pid`, its reaped children and its live children.

    For a gunicorn arbiter: itself and its workers, including a replaced worker's
    time; for an RQ worker: itself, its cron process and every work horse it forked.
    """
    total = 0
    for index, one in enumerate([pid, *children(pid)]):
        try:
            fields = _stat(one)
        except (OSError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
        if index == 0:
            total += int(fields[13]) + int(fields[14])  # cutime, cstime: reaped children
    return total / TICK


def worker_cpu(arbiter: int) -> dict[int, float]:
    """User + system CPU seconds of each live child of `arbiter` (each gunicorn worker)."""
    found = {}
    for pid in children(arbiter):
        try:
            fields = _stat(pid)
        except (OSError, IndexError):
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / TICK
    return found


def wait_idle(pid: int, busy: float = 0.05, interval: float = 0.5, timeout: float = 90.0) -> float:
    """Waits until the process tree of `pid` uses less than `busy` of a core over
    `interval` (a server still working off requests a finished load left queued);
    returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        before = cpu_seconds(pid)
        time.sleep(interval)
        if cpu_seconds(pid) - before < busy * interval:
            break
    return time.monotonic() - started


def memory_kib(pid: int, field: str = "VmRSS") -> int:
    """A /proc/<pid>/status memory field in KiB (VmRSS now, VmHWM peak), 0 if gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


def reset_peak(pid: int) -> bool:
    """Resets the kernel's VmHWM of `pid` to its current RSS (Linux >= 4.0)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class RssSampler:
    """Samples VmRSS of some processes in a thread; `peak_kib[pid]` is the highest seen.

    Sampling can miss a short spike, so callers also read VmHWM (after `reset_peak`).
    """

    def __init__(self, pids: Sequence[int], interval: float = 0.02) -> None:
        self.pids = list(pids)
        self.interval = interval
        self.peak_kib = dict.fromkeys(self.pids, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in self.pids:
                self.peak_kib[pid] = max(self.peak_kib[pid], memory_kib(pid))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class TreeSampler:
    """Every `interval` s, VmRSS and VmHWM of some roots and their children; keeps the peaks.

    With `reset_peaks`, VmHWM of the roots and of the children present at the start
    is reset first, so it covers exactly the sampled period; a child that lives less
    than one interval (a work horse running a tiny job) can be missed. `first_kib`
    holds each process's VmRSS at its first sample.
    """

    def __init__(self, roots: list[int], interval: float = 0.1, reset_peaks: bool = True) -> None:
        self.roots = roots
        self.interval = interval
        self.reset_peaks = reset_peaks
        self.parent: dict[int, int] = {}
        self.peak_kib: dict[int, int] = {}
        self.first_kib: dict[int, int] = {}
        self.sampler_cpu_seconds = 0.0  # this sampler's own CPU, to subtract from the client's
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        for root in self.roots:
            for pid in [root, *children(root)]:
                self.parent.setdefault(pid, root)
                rss = memory_kib(pid)
                self.first_kib.setdefault(pid, rss)
                peak = max(rss, memory_kib(pid, "VmHWM"))
                self.peak_kib[pid] = max(self.peak_kib.get(pid, 0), peak)

    def _run(self) -> None:
        started = time.thread_time()
        while not self._stop.wait(self.interval):
            self._sample()
        self.sampler_cpu_seconds = time.thread_time() - started

    def __enter__(self) -> TreeSampler:
        if self.reset_peaks:
            for root in self.roots:
                for pid in [root, *children(root)]:
                    reset_peak(pid)
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def peak_mib(self, pid: int) -> float:
        return self.peak_kib.get(pid, 0) / 1024

    def descendants(self, root: int) -> list[int]:
        return sorted(pid for pid, parent in self.parent.items() if parent == root and pid != root)
