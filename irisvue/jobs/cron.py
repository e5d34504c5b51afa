"""Periodic work through RQ 3.0's cron scheduler, with the JSON serializer.

rq 3.0's `CronJob.enqueue()` builds `Queue(name, connection=...)` with RQ's
default serializer, pickle, whatever `CronScheduler.serializer` says (that
attribute is only resolved, never passed on). Our workers read JSON only, so a
pickled cron job would fail to load in them, and accepting pickle would let
whoever can write to Redis run code in the worker. `JSONCronJob` is the same
enqueue with the JSON serializer, and `JSONCronScheduler` registers those.

rq internals, version-fenced (pyproject bounds rq below 3.1): the copied body
of `CronJob.enqueue` (its source hash), `CronScheduler._cron_jobs`,
`rq.cron_job_registry.add` and `rq.defaults.DEFAULT_CRON_JOB_HISTORY_*`; see
tests/test_dependency_fences.py, which also says when the copy can go.
"""

from __future__ import annotations

import logging
import multiprocessing
from multiprocessing.process import BaseProcess
from typing import Any

from flask import Flask
from redis import Redis
from rq import Queue, cron_job_registry
from rq.cron import CronJob, CronScheduler
from rq.defaults import DEFAULT_CRON_JOB_HISTORY_LIMIT, DEFAULT_CRON_JOB_HISTORY_TTL
from rq.job import Job as RQJob
from rq.serializers import JSONSerializer

from irisvue.jobs.registry import periodic_tasks


class JSONCronJob(CronJob):
    """A CronJob whose jobs are serialised as JSON (see the module docstring)."""

    def enqueue(self, connection: Redis) -> RQJob:
        if not self.func:
            raise ValueError("CronJob has no function to enqueue")
        queue = Queue(self.queue_name, connection=connection, serializer=JSONSerializer)
        # Below: rq.cron.CronJob.enqueue, unchanged (job + history in one round trip).
        with connection.pipeline() as pipeline:
            job = queue.enqueue(
                self.func, args=self.args, kwargs=self.kwargs, **self.job_options, pipeline=pipeline
            )
            assert job.enqueued_at is not None
            pipeline.zadd(self.job_history_key, {job.id: job.enqueued_at.timestamp()})
            pipeline.zremrangebyrank(self.job_history_key, 0, -(DEFAULT_CRON_JOB_HISTORY_LIMIT + 1))
            pipeline.expire(self.job_history_key, DEFAULT_CRON_JOB_HISTORY_TTL)
            cron_job_registry.add(
                self.name, pipeline, enqueue_timestamp=job.enqueued_at.timestamp()
            )
            pipeline.execute()
        logging.getLogger(__name__).info("cron_enqueued", extra={"cron_job": self.name})
        return job


class JSONCronScheduler(CronScheduler):
    """RQ's CronScheduler, registering JSONCronJobs."""

    def __init__(self, connection: Redis, **kwargs: Any) -> None:
        super().__init__(connection, **kwargs)
        self.serializer = JSONSerializer

    def register(self, func: Any, queue_name: str, **options: Any) -> CronJob:  # type: ignore[override]
        cron_job = JSONCronJob(queue_name=queue_name, func=func, **options)
        self._cron_jobs.append(cron_job)
        self.log.info("Registered %s on %s", cron_job.name, queue_name)
        return cron_job


def build_scheduler(app: Flask, connection: Redis) -> JSONCronScheduler:
    """The app's periodic tasks (`registry.register_periodic`) on RQ's cron scheduler."""
    failure_ttl = int(app.config["JOB_FAILURE_TTL_SECONDS"])
    scheduler = JSONCronScheduler(connection, logging_level=app.config["LOG_LEVEL"])
    for task in periodic_tasks(app):
        options = {"failure_ttl": failure_ttl, **task.options}
        if task.cron is not None:
            options["cron"] = task.cron
        else:
            options["interval"] = task.interval
        scheduler.register(task.fn, "default", name=task.name, **options)
    return scheduler


def _cron_main(app: Flask) -> None:
    connection = Redis.from_url(app.config["REDIS_URL"], socket_connect_timeout=5)
    build_scheduler(app, connection).start()  # returns on SIGTERM/SIGINT


def start_cron_process(app: Flask) -> BaseProcess:
    """Run the cron scheduler in a forked child (its own main thread, so
    `CronScheduler.start()` can install its signal handlers), as RQ runs its
    own scheduler next to a worker."""
    process = multiprocessing.get_context("fork").Process(
        target=_cron_main, args=(app,), name="irisvue-cron", daemon=True
    )
    process.start()
    return process


def stop_cron_process(process: BaseProcess, timeout: float = 10.0) -> None:
    if process.is_alive():
        process.terminate()  # SIGTERM: the scheduler unregisters itself and exits
        process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join(timeout)
