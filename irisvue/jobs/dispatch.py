"""RQ wiring: the app's queues, handing one outbox row to RQ, and the workers.

Everything RQ stores is serialised as JSON (never pickle) and a job's only
argument is the id of its `jobs` row, so Redis and any dashboard on it see no
personal data.
"""

from __future__ import annotations

import contextlib
import signal
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import structlog
from flask import Flask, current_app
from redis import Redis
from rq import Queue, Retry, SimpleWorker, Worker
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job as RQJob
from rq.job import JobStatus
from rq.serializers import JSONSerializer

from irisvue.clients import make_redis
from irisvue.jobs.registry import QUEUE_NAMES, get_handler

if TYPE_CHECKING:
    from irisvue.models import Job

log = structlog.get_logger(__name__)

QUEUES_EXTENSION = "irisvue.queues"
# RQ job states in which the job is still RQ's responsibility.
ACTIVE_RQ_STATES = frozenset(
    {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
)

JOB_DEFAULTS: dict[str, Any] = {
    "JOB_RESULT_TTL_SECONDS": 24 * 3600,
    # RQ retry delays; the last one repeats when JOB_MAX_RETRIES is larger.
    "JOB_RETRY_BACKOFF_SECONDS": (10, 60, 300),
    # Short: enqueueing happens on the request path and must fail fast.
    "JOB_REDIS_TIMEOUT_SECONDS": 1.0,
    "JOB_RELAY_INTERVAL_SECONDS": 60,
}


def init_jobs(app: Flask) -> None:
    """Build the RQ queues (emails, default, exports), or None: jobs run inline."""
    for key, value in JOB_DEFAULTS.items():
        app.config.setdefault(key, value)
    url = app.config.get("REDIS_URL")
    if not url:
        app.extensions[QUEUES_EXTENSION] = None
        return
    # A client of its own: RQ workers rewrite their connection's socket timeout,
    # which must never leak into the request path's client.
    connection = make_redis(url, timeout=float(app.config["JOB_REDIS_TIMEOUT_SECONDS"]))
    app.extensions[QUEUES_EXTENSION] = {
        name: Queue(name, connection=connection, serializer=JSONSerializer) for name in QUEUE_NAMES
    }


def get_queues(app: Flask | None = None) -> dict[str, Queue] | None:
    """The app's queues by name, or None in the embedded stack (jobs run inline)."""
    return (app or current_app).extensions.get(QUEUES_EXTENSION)


def retry_policy(config: dict[str, Any]) -> Retry | None:
    max_retries = int(config["JOB_MAX_RETRIES"])
    if max_retries < 1:
        return None
    backoff = [int(seconds) for seconds in config["JOB_RETRY_BACKOFF_SECONDS"]] or [0]
    return Retry(max=max_retries, interval=backoff)


def enqueue(job: Job) -> None:
    """Hand one outbox row to RQ; raises redis errors when Redis is unreachable.

    The RQ job id is the row's id, so a second hand-over of the same row is
    detected atomically (`unique=True`) instead of running it twice.
    """
    from irisvue.jobs.runner import run_job

    queues = get_queues()
    assert queues is not None, "enqueue() needs REDIS_URL; without it jobs run inline"
    config = current_app.config
    queue = queues[job.queue]
    job_id = str(job.id)
    options: dict[str, Any] = {
        "args": (job_id,),
        "job_id": job_id,
        "description": job.kind,
        "timeout": get_handler(job.kind).timeout,
        "result_ttl": int(config["JOB_RESULT_TTL_SECONDS"]),
        "failure_ttl": int(config["JOB_FAILURE_TTL_SECONDS"]),
        "retry": retry_policy(config),
        "unique": True,
    }
    try:
        queue.enqueue_call(run_job, **options)
    except DuplicateJobError:
        status = rq_status(job_id, queue.connection)
        if status in ACTIVE_RQ_STATES:
            return  # handed over already (the earlier dispatch lost its commit)
        # RQ is done with an earlier run whose outcome never reached the row.
        with contextlib.suppress(NoSuchJobError):
            RQJob.fetch(job_id, connection=queue.connection, serializer=JSONSerializer).delete()
        queue.enqueue_call(run_job, **options)


def rq_status(job_id: str, connection: Redis) -> JobStatus | None:
    """RQ's status of a job, or None when Redis no longer has it."""
    try:
        rq_job = RQJob.fetch(job_id, connection=connection, serializer=JSONSerializer)
    except NoSuchJobError:
        return None
    return rq_job.get_status(refresh=False)


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
    (`with_scheduler`). Returns how many job executions ran.
    """
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
    from irisvue.jobs import cron as cron_module
    from irisvue.jobs.outbox import relay

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
