"""Job kinds that exist only in the test process (registered through the public API)."""

from __future__ import annotations

from irisvue.extensions import db
from irisvue.jobs.outbox import report_progress
from irisvue.jobs.registry import PermanentJobError, job_handler
from irisvue.models import Job, User


@job_handler("test.fails_with_personal_message", queue="default", timeout=30)
def fails_with_personal_message(job: Job) -> None:
    user = db.session.get(User, job.user_id)
    # The kind of message a careless handler raises: it must not reach Redis or `error`.
    raise RuntimeError(f"could not process {user.email if user else 'nobody'}")


@job_handler("test.permanent_failure", queue="default", timeout=30)
def permanent_failure(job: Job) -> None:
    raise PermanentJobError("test_not_retryable")


@job_handler("test.progress", queue="exports", timeout=30)
def reports_progress(job: Job) -> dict:
    for step in (25, 50, 75):
        report_progress(job, step)
    return {"steps": 3, "echo": job.args.get("n")}
