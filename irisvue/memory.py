"""glibc malloc settings for long-running worker processes.

Called from gunicorn.conf.py (`post_fork`, in every worker) and worker.py.
glibc's mmap threshold adapts upwards after a large block is freed, so the
next 5 MiB upload part or 1 MiB slab comes from the heap, where the small
allocations around it keep the freed space from going back to the kernel:
the worker's RSS drifts above what it holds. Pinning the threshold at 1 MiB
returns every large buffer (upload slabs, encryption segments) to the kernel
when it is freed. Pinning it also freezes the trim threshold at its 128 KiB
default, which would shrink and regrow the heap around every request, so that
one is set generously.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
M_MMAP_THRESHOLD = -3

DEFAULT_MMAP_THRESHOLD = 1024 * 1024
DEFAULT_TRIM_THRESHOLD = 16 * 1024 * 1024


def tune_malloc(
    mmap_threshold: int = DEFAULT_MMAP_THRESHOLD, trim_threshold: int = DEFAULT_TRIM_THRESHOLD
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
    applied = [mallopt(M_MMAP_THRESHOLD, mmap_threshold), mallopt(M_TRIM_THRESHOLD, trim_threshold)]
    return all(applied)
