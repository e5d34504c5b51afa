"""The transactional outbox: a job is a `jobs` row first, an RQ job second.

Services call `submit(...)` next to the change that causes the job and then
`commit()` instead of `db.session.commit()`: the row commits atomically with
the change and is handed to RQ only afterwards. Whatever could not be handed
over (Redis down, process killed in between) keeps `dispatched_at` NULL and
`relay()` sends it later. Without Redis (embedded stack) `commit()` runs the
jobs inline, in this process.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterable
from concurrent import futures
from datetime import timedelta
from typing import Any

import structlog
from flask import Flask, current_app
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from irisvue.extensions import db
from irisvue.jobs import queues
from irisvue.jobs.execution import execute
from irisvue.jobs.registry import UnknownJobKindError, get_handler
from irisvue.models import Job
from irisvue.models.base import utcnow
from irisvue.models.job import JOB_FINAL_STATUSES as FINAL_STATUSES

log = structlog.get_logger(__name__)

_PENDING_KEY = "irisvue.outbox.pending"
RELAY_BATCH = 100
_background: futures.ThreadPoolExecutor | None = None
_background_lock = threading.Lock()
_in_flight: set[futures.Future[int]] = set()


def _pending() -> list[uuid.UUID]:
    return db.session.info.setdefault(_PENDING_KEY, [])


def _check_args(kind: str, args: dict[str, Any]) -> None:
    try:
        encoded = json.dumps(args)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"job {kind!r}: args must be JSON-serialisable") from exc
    # Ids only: an address in the args would reach Redis, logs and dashboards.
    if "@" in encoded:
        raise ValueError(f"job {kind!r}: args must carry ids, never email addresses")


def submit(kind: str, *, user_id: uuid.UUID | None = None, args: dict | None = None) -> Job:
    """Add a job row to the current transaction; `commit()` hands it to RQ."""
    handler = get_handler(kind)
    args = dict(args or {})
    _check_args(kind, args)
    job = Job(kind=kind, queue=handler.queue, user_id=user_id, args=args)
    job.status = "queued"
    job.progress = 0
    job.attempts = 0
    db.session.add(job)
    db.session.flush()
    _pending().append(job.id)
    return job


def commit(*, background: bool = False) -> None:
    """Commit the session, then dispatch every job submitted in it.

    Dispatch problems are logged, never raised: the change is committed and the
    outbox row guarantees the job is sent by the relay. `background=True` hands
    the jobs to Redis from a small thread pool instead of the request's thread,
    so the answer never waits for Redis (nor shows, by its timing, that a job
    was queued at all).
    """
    db.session.commit()
    pending = list(_pending())
    _pending().clear()
    if not pending:
        return
    if background and queues.get_queues() is not None:
        _dispatch_in_background(current_app._get_current_object(), pending)  # type: ignore[attr-defined]
    else:
        _dispatch_ids(pending)


def _dispatch_in_background(app: Flask, ids: list[uuid.UUID]) -> None:
    global _background
    with _background_lock:
        if _background is None:
            _background = futures.ThreadPoolExecutor(2, thread_name_prefix="outbox-dispatch")
        future = _background.submit(_dispatch_with_app, app, ids)
        _in_flight.add(future)
    future.add_done_callback(_forget)


def _forget(future: futures.Future[int]) -> None:
    # Runs on a pool thread: the set is shared with wait_background().
    with _background_lock:
        _in_flight.discard(future)


def _dispatch_with_app(app: Flask, ids: list[uuid.UUID]) -> int:
    with app.app_context():
        try:
            return _dispatch_ids(ids)
        except Exception as exc:  # noqa: BLE001 - the relay sends whatever is left
            log.warning("job_dispatch_failed", error=type(exc).__name__)
            return 0


def wait_background(timeout: float = 30.0) -> None:
    """Wait for this process's background dispatches (a burst worker, before draining)."""
    with _background_lock:
        pending = list(_in_flight)
    futures.wait(pending, timeout=timeout)


def _dispatch_ids(ids: list[uuid.UUID]) -> int:
    if queues.get_queues() is None:
        return _run_inline(ids)
    stmt = select(Job).where(Job.id.in_(ids), Job.dispatched_at.is_(None))
    return _hand_over(stmt)


def _hand_over(stmt: Any) -> int:
    """Enqueue the rows `stmt` selects, locked so two dispatchers never both send."""
    sent: list[Job] = []
    try:
        jobs = db.session.scalars(stmt.with_for_update(skip_locked=True)).all()
        for job in jobs:
            try:
                queues.enqueue(job)
            except UnknownJobKindError:
                # A kind no deployed code handles any more: no worker could run it.
                job.status, job.error, job.finished_at = "failed", "unknown_job_kind", utcnow()
                continue
            except (RedisError, OSError) as exc:
                log.warning(
                    "job_dispatch_failed",
                    job_id=str(job.id),
                    kind=job.kind,
                    error=type(exc).__name__,
                )
                break  # Redis is down: the relay will take the rest
            sent.append(job)
        now = utcnow()
        for job in sent:
            job.dispatched_at = now
        db.session.commit()
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.error("job_dispatch_db_error", error=type(exc).__name__)
        return 0
    return len(sent)


def _run_inline(ids: Iterable[uuid.UUID]) -> int:
    ran = 0
    for job_id in ids:
        job = db.session.get(Job, job_id)
        if job is None or job.dispatched_at is not None:
            continue  # rolled back, or already handed over
        job.dispatched_at = utcnow()
        db.session.commit()
        try:
            execute(job_id)
        except Exception as exc:  # noqa: BLE001 - the request already committed; the row says failed
            log.warning("job_inline_failed", job_id=str(job_id), error=type(exc).__name__)
        ran += 1
    return ran


def relay(min_age_seconds: float = 30, *, orphan_age_seconds: float = 300) -> int:
    """Dispatch rows not handed over for `min_age_seconds`; returns how many were sent.

    Also repairs rows RQ lost track of (Redis lost its data, or a worker died
    on the last attempt) once they have been dispatched `orphan_age_seconds`.
    """
    if queues.get_queues() is None:
        cutoff = utcnow() - timedelta(seconds=min_age_seconds)
        stmt = select(Job.id).where(
            Job.dispatched_at.is_(None), Job.status == "queued", Job.created_at <= cutoff
        )
        return _run_inline(db.session.scalars(stmt).all())
    total = 0
    while True:
        cutoff = utcnow() - timedelta(seconds=min_age_seconds)
        stmt = (
            select(Job)
            .where(Job.dispatched_at.is_(None), Job.created_at <= cutoff)
            .where(Job.status.not_in(FINAL_STATUSES))
            .order_by(Job.created_at)
            .limit(RELAY_BATCH)
        )
        sent = _hand_over(stmt)
        total += sent
        if sent < RELAY_BATCH:
            break
    total += _repair_orphans(orphan_age_seconds)
    if total:
        log.info("outbox_relayed", count=total)
    return total


def _repair_orphans(orphan_age_seconds: float) -> int:
    app_queues = queues.get_queues()
    assert app_queues is not None
    connection = next(iter(app_queues.values())).connection
    cutoff = utcnow() - timedelta(seconds=orphan_age_seconds)
    stmt = (
        select(Job)
        .where(Job.status.not_in(FINAL_STATUSES), Job.dispatched_at <= cutoff)
        .order_by(Job.dispatched_at)
        .limit(RELAY_BATCH)
        .with_for_update(skip_locked=True)
    )
    resent = 0
    try:
        for job in db.session.scalars(stmt).all():
            status = queues.rq_status(str(job.id), connection)
            if status in queues.ACTIVE_RQ_STATES:
                continue
            if status is None:  # Redis lost it: hand it over again
                try:
                    queues.enqueue(job)
                except UnknownJobKindError:
                    job.status, job.error, job.finished_at = "failed", "unknown_job_kind", utcnow()
                    continue
                job.dispatched_at = utcnow()
                resent += 1
            elif status != "finished":  # RQ gave up without the runner recording it
                job.status, job.finished_at = "failed", utcnow()
                job.error = job.error or "worker_lost"
                log.warning("job_lost", job_id=str(job.id), kind=job.kind, rq_status=str(status))
        db.session.commit()
    except (RedisError, OSError) as exc:
        db.session.commit()  # keep what was re-sent
        log.warning("job_repair_failed", error=type(exc).__name__)
    return resent


def report_progress(job: Job, percent: int | float) -> None:
    """Record a handler's progress (0..100). Commits the session: call it between
    steps that are complete on their own."""
    job.progress = max(0, min(100, int(percent)))
    db.session.commit()
