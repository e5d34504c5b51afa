"""The Argon2 ceiling's inputs: CPU time of one verify with the app's parameters, and the
cores it is divided by (ceiling = usable cores / CPU s per verify).

One verify is timed two ways, alternately: the app's (`verify_on_one_thread`, the lanes
on one thread) and argon2-cffi's `PasswordHasher.verify` (a thread per lane). The
ceiling divides by the cheaper of the two, so the app's choice cannot lower the bar."""

from __future__ import annotations

import os
import statistics
import time
from typing import Any


def argon2_cpu_per_verify(samples: int) -> dict[str, Any]:
    """Median CPU seconds (all threads of this process) of one verify, app's parameters."""
    from argon2 import PasswordHasher

    from irisvue.auth.passwords import password_defaults, verify_on_one_thread

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
    ways = {"app": verify_on_one_thread, "library": hasher.verify}
    cpu: dict[str, list[float]] = {way: [] for way in ways}
    wall: dict[str, list[float]] = {way: [] for way in ways}
    for _ in range(samples):
        for way, verify in ways.items():
            c0, w0 = time.process_time(), time.perf_counter()
            assert verify(hashed, "bench-password-1")
            cpu[way].append(time.process_time() - c0)
            wall[way].append(time.perf_counter() - w0)
    medians = {way: statistics.median(cpu[way]) for way in ways}
    return {
        "params": {k: v for k, v in params.items() if k != "ARGON2_MAX_CONCURRENCY"},
        "cpu_s": min(medians.values()),
        "app_cpu_s": medians["app"],
        "library_cpu_s": medians["library"],
        "wall_s": statistics.median(wall["app"]),
        "library_wall_s": statistics.median(wall["library"]),
    }


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, as the gunicorn it starts
    inherits it): what the login ceiling divides by. os.cpu_count() counts the machine's
    cores, more than these under taskset or a cpuset."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:
        return os.cpu_count() or 1
