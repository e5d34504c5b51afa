"""Running one outbox job: its handler, and the outcome recorded on its row."""

from __future__ import annotations

import re
import traceback
import uuid

import structlog
from rq import get_current_job

from irisvue.extensions import db
from irisvue.jobs.registry import JobError, PermanentJobError, get_handler
from irisvue.models import Job
from irisvue.models.base import utcnow
from irisvue.models.job import JOB_FINAL_STATUSES as FINAL_STATUSES

log = structlog.get_logger(__name__)

_CODE = re.compile(r"^[a-z][a-z0-9_.]{0,63}$")


class JobAttemptError(Exception):
    """What RQ sees when a handler fails: the error code, nothing else."""


def error_code(exc: BaseException) -> str:
    """What `Job.error` records: a stable code or the exception's class name.

    Never the message: exception texts can quote addresses or tokens.
    """
    code = getattr(exc, "code", None) if isinstance(exc, JobError) else None
    if isinstance(code, str) and _CODE.match(code):
        return code
    return type(exc).__name__


def _retries_left() -> int:
    rq_job = get_current_job()
    if rq_job is None:  # inline: no retries
        return 0
    return rq_job.retries_left or 0


def execute(job_id: uuid.UUID) -> None:
    """Run one job's handler and record the outcome on its row.

    Idempotent: a job that is finished or failed is not run again. A failure is
    re-raised so RQ retries it; the row says `queued` while retries are left
    and `failed` after the last one.
    """
    with structlog.contextvars.bound_contextvars(job_id=str(job_id)):
        job = db.session.get(Job, job_id)
        if job is None:
            log.info("job_gone")  # rolled back, or erased with its user
            return
        if job.status in FINAL_STATUSES:
            log.info("job_already_done", status=job.status)
            return
        job.status = "started"
        job.attempts += 1
        job.started_at = utcnow()
        db.session.commit()
        try:
            handler = get_handler(job.kind)
            result = handler.fn(job)
        except PermanentJobError as exc:
            _record_failure(job_id, exc, final=True)
            return  # nothing to retry: RQ sees a completed call
        except Exception as exc:  # noqa: BLE001 - recorded, then re-raised for RQ
            code = _record_failure(job_id, exc, final=_retries_left() == 0)
            # RQ stores and logs the traceback of what it catches; exception
            # messages may quote personal data, so it gets the code alone.
            raise JobAttemptError(code) from None
        job.result = result
        job.status = "finished"
        job.progress = 100
        job.error = None
        job.finished_at = utcnow()
        db.session.commit()
        log.info("job_finished", kind=job.kind)


def _record_failure(job_id: uuid.UUID, exc: BaseException, final: bool) -> str:
    code = error_code(exc)
    # Where it failed (files, lines, code) but not the message.
    log.warning(
        "job_failed",
        error=code,
        final=final,
        traceback="".join(traceback.format_tb(exc.__traceback__)),
    )
    db.session.rollback()
    job = db.session.get(Job, job_id)
    if job is not None:
        job.error = code
        job.status = "failed" if final else "queued"
        if final:
            job.finished_at = utcnow()
        db.session.commit()
    return code
