"""Dependency checks, each bounded by HEALTH_TIMEOUT_SECONDS."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from flask import Flask, current_app
from sqlalchemy import text

from irisvue.clients import REDIS_EXTENSION
from irisvue.extensions import db
from irisvue.storage import get_storage

# Checks run off the request thread so a hung dependency costs at most the
# timeout; the pool is small because the clients' own timeouts bound each call.
_pool = ThreadPoolExecutor(max_workers=6, thread_name_prefix="health")


def _check_db(app: Flask) -> str:
    with app.app_context(), db.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        return conn.dialect.name


def _check_redis(app: Flask) -> str:
    client = app.extensions.get(REDIS_EXTENSION)
    if client is None:
        return "disabled"  # embedded stack: jobs inline, limits in memory
    client.ping()
    return "redis"


def _check_storage(app: Flask) -> str:
    with app.app_context():
        store = get_storage()
        store.ping()
        return store.backend


CHECKS: dict[str, Callable[[Flask], str]] = {
    "db": _check_db,
    "redis": _check_redis,
    "storage": _check_storage,
}


def run_checks(names: list[str]) -> tuple[bool, dict[str, dict[str, Any]]]:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    timeout = float(app.config["HEALTH_TIMEOUT_SECONDS"])
    started = {name: (time.perf_counter(), _pool.submit(CHECKS[name], app)) for name in names}
    results: dict[str, dict[str, Any]] = {}
    deadline = time.perf_counter() + timeout
    for name, (t0, future) in started.items():
        try:
            backend = future.result(timeout=max(0.0, deadline - time.perf_counter()))
            results[name] = {"status": "ok", "backend": backend}
        except FutureTimeout:
            results[name] = {"status": "error", "error": "timeout"}
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            results[name] = {"status": "error", "error": type(exc).__name__}
        results[name]["latency_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    healthy = all(r["status"] == "ok" for r in results.values())
    return healthy, results
