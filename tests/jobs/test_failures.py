"""Failing jobs: RQ retries with backoff, the row records a code, never personal data."""

from __future__ import annotations

import time
import uuid

from rq.job import Job as RQJob
from rq.job import JobStatus
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from rq.serializers import JSONSerializer

from irisvue.extensions import db
from irisvue.jobs import outbox
from irisvue.jobs.dispatch import run_burst_worker
from irisvue.models import Job
from tests.support.jobs import all_redis_bytes
from tests.support.stack import free_port

BACKOFF = (1, 2)


def _row(app, job_id: uuid.UUID) -> Job:
    with app.app_context():
        job = db.session.get(Job, job_id)
        db.session.expunge(job)
        return job


def _submit(app, kind: str, user_id: uuid.UUID) -> uuid.UUID:
    with app.app_context():
        job = outbox.submit(kind, user_id=user_id)
        outbox.commit()
        return job.id


def _run_until_final(app, job_id: uuid.UUID, queue: str, redis, deadline_s: float = 30) -> list:
    """Run bursts until the row is final; returns, per failed attempt, the seconds
    between the attempt's start and the retry time RQ scheduled."""
    delays = []
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        started = time.time()
        ran = run_burst_worker(app)
        row = _row(app, job_id)
        if row.status in ("finished", "failed"):
            return delays
        if ran:
            assert row.status == "queued"  # retries left: not failed yet
            scheduled = ScheduledJobRegistry(queue, connection=redis).get_scheduled_time(
                str(job_id)
            )
            delays.append(scheduled.timestamp() - started)
            time.sleep(max(0.0, scheduled.timestamp() - time.time()) + 0.1)
        else:
            time.sleep(0.2)
    raise AssertionError("job did not reach a final state in time")


def test_failing_handler_is_retried_with_backoff_then_failed(make_app, make_user, redis_raw):
    app = make_app(JOB_MAX_RETRIES=2, JOB_RETRY_BACKOFF_SECONDS=BACKOFF)
    user = make_user("grace.hopper@example.com")
    job_id = _submit(app, "test.fails_with_personal_message", user.id)

    delays = _run_until_final(app, job_id, "default", redis_raw)

    # Two retries, each scheduled at least its backoff later (RQ stores whole seconds).
    assert len(delays) == 2
    for delay, backoff in zip(delays, BACKOFF, strict=True):
        assert delay >= backoff - 1
    row = _row(app, job_id)
    assert (row.status, row.attempts, row.error) == ("failed", 3, "RuntimeError")
    assert row.finished_at is not None and row.result is None

    rq_job = RQJob.fetch(str(job_id), connection=redis_raw, serializer=JSONSerializer)
    assert rq_job.get_status() == JobStatus.FAILED
    assert str(job_id) in FailedJobRegistry("default", connection=redis_raw).get_job_ids()
    ttl = redis_raw.ttl(f"rq:job:{job_id}")
    assert 0 < ttl <= app.config["JOB_FAILURE_TTL_SECONDS"]
    # What RQ kept of the failure is the code; the message quoting the address is gone.
    exc_string = rq_job.latest_result().exc_string
    assert "JobAttemptError: RuntimeError" in exc_string
    assert b"grace.hopper" not in all_redis_bytes(redis_raw)


def test_permanent_failure_is_not_retried(make_app, make_user, redis_raw):
    app = make_app(JOB_MAX_RETRIES=3, JOB_RETRY_BACKOFF_SECONDS=(0,))
    user = make_user()
    job_id = _submit(app, "test.permanent_failure", user.id)
    assert run_burst_worker(app) == 1
    row = _row(app, job_id)
    assert (row.status, row.attempts, row.error) == ("failed", 1, "test_not_retryable")


def test_smtp_down_fails_the_email_job_visibly_after_retries(
    make_app, make_user, mailbox, redis_raw, auth_headers
):
    app = make_app(
        SMTP_PORT=free_port(),  # nothing listens there
        JOB_MAX_RETRIES=2,
        JOB_RETRY_BACKOFF_SECONDS=(1,),
        SMTP_TIMEOUT_SECONDS=2,
    )
    user = make_user("alan.turing@example.com")
    job_id = _submit(app, "email.welcome", user.id)

    delays = _run_until_final(app, job_id, "emails", redis_raw)

    assert len(delays) == 2
    row = _row(app, job_id)
    assert (row.status, row.attempts, row.error) == ("failed", 3, "smtp_unavailable")
    assert mailbox.messages == []
    response = app.test_client().get(f"/api/v1/jobs/{job_id}", headers=auth_headers(user))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "failed"
    assert response.get_json()["error"] == "smtp_unavailable"
    assert b"alan.turing" not in all_redis_bytes(redis_raw)


def test_smtp_recovering_between_retries_delivers_once(make_app, make_user, mailbox, redis_raw):
    """The first attempt finds SMTP down; the retry, with SMTP back, delivers."""
    app = make_app(SMTP_PORT=free_port(), JOB_MAX_RETRIES=2, JOB_RETRY_BACKOFF_SECONDS=(1,))
    user = make_user()
    job_id = _submit(app, "email.welcome", user.id)
    assert run_burst_worker(app) == 1
    assert _row(app, job_id).status == "queued"

    app.config["SMTP_PORT"] = mailbox.port  # the mail server is back
    _run_until_final(app, job_id, "emails", redis_raw)
    row = _row(app, job_id)
    assert (row.status, row.attempts, row.error) == ("finished", 2, None)
    assert len(mailbox.to(user.email)) == 1
