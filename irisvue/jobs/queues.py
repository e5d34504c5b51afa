"""RQ wiring: the app's queues and handing one outbox row to RQ.

Everything RQ stores is serialised as JSON (never pickle) and a job's only
argument is the id of its `jobs` row, so Redis and any dashboard on it see no
personal data.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import structlog
from flask import Flask, current_app
from redis import Redis
from rq import Queue, Retry
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
# What RQ runs for every outbox job, by dotted path (the runner imports this
# machinery, not the other way round).
RUN_JOB = "irisvue.jobs.runner.run_job"
# RQ job states in which the job is still RQ's responsibility.
ACTIVE_RQ_STATES = frozenset(
    {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
)


def init_jobs(app: Flask) -> None:
    """Build the RQ queues (emails, default, exports), or None: jobs run inline."""
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
        queue.enqueue_call(RUN_JOB, **options)
    except DuplicateJobError:
        status = rq_status(job_id, queue.connection)
        if status in ACTIVE_RQ_STATES:
            return  # handed over already (the earlier dispatch lost its commit)
        # RQ is done with an earlier run whose outcome never reached the row.
        with contextlib.suppress(NoSuchJobError):
            RQJob.fetch(job_id, connection=queue.connection, serializer=JSONSerializer).delete()
        queue.enqueue_call(RUN_JOB, **options)


def rq_status(job_id: str, connection: Redis) -> JobStatus | None:
    """RQ's status of a job, or None when Redis no longer has it."""
    try:
        rq_job = RQJob.fetch(job_id, connection=connection, serializer=JSONSerializer)
    except NoSuchJobError:
        return None
    return rq_job.get_status(refresh=False)
