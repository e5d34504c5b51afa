"""SMTP down: an email job is retried, then fails visibly; the account can recover.

Complements tests/jobs/test_failures.py (which submits the job directly) with the
whole path: a registration through the API, the real RQ retry bookkeeping, the
failed registry, the job as the user sees it, and a resend once SMTP is back.
"""

from __future__ import annotations

import uuid

import pytest
from redis import Redis
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from sqlalchemy import select

from irisvue import create_app
from irisvue.extensions import db
from irisvue.jobs import outbox
from irisvue.jobs.dispatch import run_burst_worker
from irisvue.models import Job
from tests.support.faults import row_counts
from tests.support.stack import free_port, reset_state
from tests.support.users import token_from

pytestmark = pytest.mark.slow

AUTH = "/api/v1/auth"
MAX_ATTEMPTS = 3  # JOB_MAX_RETRIES = 2


@pytest.fixture
def smtp_down_app(stack_env):
    application = create_app(
        {
            "SMTP_PORT": free_port(),  # nothing listens there
            "SMTP_TIMEOUT_SECONDS": 2,
            "JOB_MAX_RETRIES": MAX_ATTEMPTS - 1,
            "JOB_RETRY_BACKOFF_SECONDS": (60,),
        }
    )
    application.config["TESTING"] = True
    yield application
    reset_state(application)


def _row(app, job_id: uuid.UUID) -> Job:
    with app.app_context():
        job = db.session.get(Job, job_id)
        db.session.expunge(job)
        return job


def test_smtp_down_email_job_retried_then_failed_and_visible(smtp_down_app, stack_env, mailbox):
    app = smtp_down_app
    client = app.test_client()
    redis = Redis.from_url(stack_env["REDIS_URL"])
    email = f"smtp-{uuid.uuid4().hex[:8]}@example.com"
    response = client.post(f"{AUTH}/register", json={"email": email, "password": "x-Lantern-42-y"})
    assert response.status_code == 201, response.get_json()
    account = response.get_json()
    headers = {"Authorization": f"Bearer {account['access_token']}"}
    with app.app_context():
        job_id = db.session.scalar(select(Job.id).where(Job.kind == "email.verify_email"))
        db.session.remove()
    before = row_counts(app)

    try:
        scheduled = ScheduledJobRegistry("emails", connection=redis)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            assert run_burst_worker(app) == 1
            row = _row(app, job_id)
            assert (row.attempts, row.error) == (attempt, "smtp_unavailable")
            if attempt < MAX_ATTEMPTS:
                # Retried with backoff: queued again, not failed; made due now.
                assert row.status == "queued"
                assert str(job_id) in scheduled.get_job_ids()
                scheduled.requeue(str(job_id))
        assert str(job_id) in FailedJobRegistry("emails", connection=redis).get_job_ids()
    finally:
        redis.close()

    row = _row(app, job_id)
    assert (row.status, row.kind, str(row.user_id)) == (
        "failed",
        "email.verify_email",
        account["user"]["id"],
    )
    assert row.finished_at is not None
    seen = client.get(f"/api/v1/jobs/{job_id}", headers=headers).get_json()
    assert (seen["status"], seen["error"]) == ("failed", "smtp_unavailable")
    assert mailbox.messages == []
    after = row_counts(app)
    # Nothing lost, nothing piled up: the account is intact, and the three attempts
    # left one unused verification token (each attempt voids the one before).
    assert after["email_tokens"] == before["email_tokens"] + 1
    assert {k: v for k, v in after.items() if k != "email_tokens"} == {
        k: v for k, v in before.items() if k != "email_tokens"
    }
    with app.app_context():  # a failed job is final: the relay does not resurrect it
        assert outbox.relay(min_age_seconds=0, orphan_age_seconds=0) == 0
    assert _row(app, job_id).status == "failed"

    # SMTP is back: the user asks again and can verify the address.
    app.config["SMTP_PORT"] = mailbox.port
    resend = client.post(f"{AUTH}/verify-email/request", headers=headers)
    assert resend.status_code == 202, resend.get_json()
    assert run_burst_worker(app) == 1
    [message] = mailbox.to(email)
    verified = client.post(f"{AUTH}/verify-email", json={"token": token_from(message)})
    assert verified.status_code == 200, verified.get_json()
    assert verified.get_json()["is_verified"] is True
