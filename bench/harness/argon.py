"""The Argon2 ceiling's inputs: CPU time of one verify with the app's parameters, and the
cores it is divided by (ceiling = usable cores / CPU s per verify)."""

from __future__ import annotations

import os
import statistics
import time
from typing import Any


def argon2_cpu_per_verify(samples: int) -> dict[str, Any]:
    """Median CPU seconds (all threads of this process) of one verify, app's parameters."""
    from argon2 import PasswordHasher

    from irisvue.auth.passwords import password_defaults

    params = password_defaults()
    for name in ("ARGON2_TIME_COST", "ARGON2_MEMORY_COST", "ARGON2_PARALLELISM"):
        if os.environ.get(name, "").strip():
            params[name] = int(os.environ[name])
    hasher = PasswordHasher(
        time_cost=params["ARGON2_TIME_COST"],
        memory_cost=params["ARGON2_MEMORY_COST"],
        parallelism=params["ARGON2_PARALLELISM"],
    )
    hashed = hasher.hash("bench-password-1")
    cpu, wall = [], []
    for _ in range(samples):
        c0, w0 = time.process_time(), time.perf_counter()
        hasher.verify(hashed, "bench-password-1")
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return {
        "params": {k: v for k, v in params.items() if k != "ARGON2_MAX_CONCURRENCY"},
        "cpu_s": statistics.median(cpu),
        "wall_s": statistics.median(wall),
    }


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, as the gunicorn it starts
    inherits it): what the login ceiling divides by. os.cpu_count() counts the machine's
    cores, more than these under taskset or a cpuset."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:
        return os.cpu_count() or 1
