"""What RQ runs: `run_job(job_id)` for every outbox job, `run_relay()` from cron.

Both take JSON-serialisable arguments only (an id, or nothing). They run in
the app context `worker.py` pushes, or, under the plain `rq worker` CLI, in
the worker app built lazily here (`worker_app()`, once per process).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
import uuid
from collections.abc import Iterator

import structlog
from flask import Flask, has_app_context

from irisvue.jobs.execution import execute
from irisvue.jobs.outbox import relay

log = structlog.get_logger(__name__)

# The app a worker process runs jobs in, built once from the factory this names
# (as `flask --app` does), so the job machinery never imports the app itself.
APP_FACTORY_ENV = "IRISVUE_APP_FACTORY"
DEFAULT_APP_FACTORY = "irisvue:create_app"
_worker_app: Flask | None = None
_worker_app_lock = threading.Lock()


def worker_app() -> Flask:
    """The worker process's app: built on first use, once per process.

    `worker.py` and the plain `rq worker` CLI both come through here.
    """
    global _worker_app
    with _worker_app_lock:
        if _worker_app is None:
            from dotenv import load_dotenv

            load_dotenv()  # a local .env, if any; real environment variables win
            module_name, _, attr = (
                os.environ.get(APP_FACTORY_ENV) or DEFAULT_APP_FACTORY
            ).partition(":")
            factory = getattr(importlib.import_module(module_name), attr or "create_app")
            _worker_app = factory()
        return _worker_app


@contextlib.contextmanager
def app_context() -> Iterator[None]:
    """The current app context, or the worker app's: for every RQ entry point."""
    if has_app_context():
        yield
        return
    with worker_app().app_context():
        yield


def run_job(job_id: str) -> None:
    """RQ entry point of every outbox job; the id is the only argument."""
    with app_context():
        execute(uuid.UUID(job_id))


def run_relay() -> int:
    """RQ entry point of the periodic outbox relay."""
    with app_context():
        return relay()


__all__ = ["app_context", "execute", "run_job", "run_relay", "worker_app"]
