"""RQ workers: the production worker (with the cron scheduler) and the
in-process burst worker tests and the CLI use."""

from __future__ import annotations

import contextlib
import signal
import uuid
from collections.abc import Iterator
from typing import Any

from flask import Flask
from redis import Redis
from rq import Queue, SimpleWorker, Worker
from rq.job import Job as RQJob
from rq.serializers import JSONSerializer

from irisvue.jobs import cron as cron_module
from irisvue.jobs.outbox import relay, wait_background
from irisvue.jobs.registry import QUEUE_NAMES


def worker_connection(app: Flask) -> Redis:
    """A connection for a worker: RQ sets its own (long) socket timeout on it."""
    url = app.config.get("REDIS_URL")
    if not url:
        raise RuntimeError("REDIS_URL is not set: jobs run inline, there is nothing to work on")
    return Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)


def worker_queues(connection: Redis) -> list[Queue]:
    return [Queue(name, connection=connection, serializer=JSONSerializer) for name in QUEUE_NAMES]


class _CountingMixin:
    """Counts executions in-process (RQ's own counters live in Redis only)."""

    executed = 0

    def execute_job(self, job: RQJob, queue: Queue) -> Any:
        self.executed += 1
        return super().execute_job(job, queue)  # type: ignore[misc]


class CountingSimpleWorker(_CountingMixin, SimpleWorker):
    pass


class CountingWorker(_CountingMixin, Worker):
    pass


@contextlib.contextmanager
def _preserved_signal_handlers() -> Iterator[None]:
    # Worker.work() installs SIGINT/SIGTERM handlers; an in-process burst
    # (tests, CLI) must hand them back to its host afterwards.
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def run_burst_worker(app: Flask) -> int:
    """Drain every queue in priority order with an in-process SimpleWorker.

    Retries whose backoff has elapsed are moved back to their queue first
    (`with_scheduler`). Returns how many job executions ran. Jobs this process
    is still handing to Redis in the background are waited for first.
    """
    wait_background()
    connection = worker_connection(app)
    try:
        with app.app_context(), _preserved_signal_handlers():
            worker = CountingSimpleWorker(
                worker_queues(connection),
                connection=connection,
                serializer=JSONSerializer,
                name=f"irisvue-burst-{uuid.uuid4().hex[:8]}",
            )
            worker.work(burst=True, with_scheduler=True, logging_level=app.config["LOG_LEVEL"])
            return worker.executed
    finally:
        connection.close()


def run_worker(app: Flask, *, burst: bool = False, cron: bool = True) -> int:
    """The production worker (forks a work horse per job); blocks until stopped.

    Without `burst`, a child process runs the cron scheduler that re-dispatches
    the outbox every JOB_RELAY_INTERVAL_SECONDS. With `burst`, the outbox is
    relayed once, the queues drained, and the worker exits.
    """
    connection = worker_connection(app)
    scheduler_process = None
    with app.app_context():
        if burst:
            relay()
        elif cron:
            scheduler_process = cron_module.start_cron_process(app)
        worker = CountingWorker(
            worker_queues(connection), connection=connection, serializer=JSONSerializer
        )
        try:
            worker.work(burst=burst, with_scheduler=True, logging_level=app.config["LOG_LEVEL"])
        finally:
            if scheduler_process is not None:
                cron_module.stop_cron_process(scheduler_process)
            connection.close()
        return worker.executed
