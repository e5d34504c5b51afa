"""Erasure under faults: Redis down at request time, and the worker SIGKILLed mid-erasure."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest
from sqlalchemy import func, select

from irisvue import create_app
from irisvue.extensions import db
from irisvue.jobs import outbox
from irisvue.jobs.dispatch import run_burst_worker
from irisvue.models import (
    Capture,
    ConsentRecord,
    ErasureTombstone,
    Job,
    PrivacyRequest,
    User,
    UserKey,
)
from tests.support.faults import kill_when_parked, parking_trigger
from tests.support.jobs import requeue_abandoned
from tests.support.servers import ROOT, kill_group, start_worker
from tests.support.stack import reset_state, start_redis
from tests.support.storage import objects_under
from tests.support.users import PASSWORD, account_with_data

ERASURE = "/api/v1/privacy/erasure"
pytestmark = pytest.mark.slow


def _bearer(body: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {body['access_token']}"}


def _scalar(app, stmt):
    with app.app_context():
        value = db.session.scalar(stmt)
        db.session.remove()
        return value


def _rerun_in_a_worker_process() -> None:
    """`worker.py --burst` in a process of its own: the requeued job runs to its end."""
    done = subprocess.run(
        [sys.executable, "worker.py", "--burst"],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_redis_down_at_request_time_then_relay(stack_env, register, consent_documents, tmp_path):
    redis_server = start_redis(tmp_path)
    app = create_app({"REDIS_URL": f"redis://127.0.0.1:{redis_server.port}/0"})
    app.config["TESTING"] = True
    try:
        client = app.test_client()
        body = register(client, password=PASSWORD)
        user_id = uuid.UUID(body["user"]["id"])
        redis_server.stop()

        response = client.post(ERASURE, json={"password": PASSWORD}, headers=_bearer(body))
        assert response.status_code == 202, response.get_json()
        # The database says revoked even though the Redis fast path was unreachable.
        assert client.get("/api/v1/auth/me", headers=_bearer(body)).status_code == 401
        job = _scalar(app, select(Job).where(Job.kind == "privacy.erase"))
        assert job.dispatched_at is None and job.status == "queued"

        redis_server.start()
        with app.app_context():
            assert outbox.relay(min_age_seconds=0) == 1
        assert run_burst_worker(app) >= 1
        status = client.get(response.get_json()["status_url"]).get_json()
        assert status["status"] == "completed"
        assert status["deleted"]["sessions"] == 1
        assert _scalar(app, select(func.count()).select_from(User).where(User.id == user_id)) == 0
    finally:
        redis_server.stop()
        reset_state(app)


def test_worker_killed_mid_erasure_then_completes(
    app, client, register, consent_documents, raw_s3, stack, stack_env, tmp_path
):
    body, headers = account_with_data(app, client)
    user_id = uuid.UUID(body["user"]["id"])
    consents = _scalar(
        app, select(func.count()).select_from(ConsentRecord).where(ConsentRecord.user_id == user_id)
    )
    response = client.post(ERASURE, json={"password": PASSWORD}, headers=headers)
    assert response.status_code == 202
    status_url = response.get_json()["status_url"]
    job_id = _scalar(app, select(Job.id).where(Job.kind == "privacy.erase"))

    log_path = tmp_path / "worker.log"
    # Test-only pause between crypto-shredding and deleting rows: the kill lands there.
    # It is reached once the capture objects' count is recorded; the key goes
    # earlier, so killing as soon as the key was gone could land mid-deletion.
    proc = start_worker({"ERASURE_TEST_PAUSE_SECONDS": "120"}, log_path, "--no-cron")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, log_path.read_text()[-2000:]
            counts = _scalar(
                app, select(PrivacyRequest.counts).where(PrivacyRequest.user_id == user_id)
            )
            paused = (counts or {}).get("objects") == 2
            if paused:
                break
            time.sleep(0.2)
        assert paused, log_path.read_text()[-2000:]
    finally:
        kill_group(proc)
    assert not _scalar(app, select(UserKey.id).where(UserKey.user_id == user_id))  # shredded

    # Killed half-way: the key is shredded, the account's rows are all still there.
    assert _scalar(app, select(User.id).where(User.id == user_id)) == user_id
    assert _scalar(app, select(Job.status).where(Job.id == job_id)) == "started"
    assert client.get(status_url).get_json()["status"] == "pending"

    requeue_abandoned(stack_env["REDIS_URL"], "default", job_id)

    _rerun_in_a_worker_process()

    status = client.get(status_url).get_json()
    assert status["status"] == "completed"
    # The totals of an uninterrupted run, though the first attempt died after the shredding.
    assert status["deleted"] == {
        "captures": 2,
        "consents": consents,
        "sessions": 1,
        "objects": 2,
    }
    with app.app_context():
        job = db.session.get(Job, job_id)
        assert (job.status, job.attempts, job.result) == ("finished", 2, status["deleted"])
        assert db.session.scalar(select(func.count()).select_from(ErasureTombstone)) == 1
        assert db.session.scalar(select(PrivacyRequest.completed_at)) is not None
        for model in (Capture, ConsentRecord, UserKey):
            count = select(func.count()).select_from(model).where(model.user_id == user_id)
            assert db.session.scalar(count) == 0
        assert db.session.get(User, user_id) is None
        db.session.remove()
    assert objects_under(raw_s3, stack.s3_bucket, f"users/{user_id}/") == []


def test_worker_killed_mid_deletion_still_reports_every_object(
    app, client, register, consent_documents, raw_s3, stack, stack_env, tmp_path
):
    # Killed after the capture objects were deleted from the store but before
    # that run recorded anything more: the re-run finds none of them, and must
    # still report them (the count listed before any deletion).
    body, headers = account_with_data(app, client)
    user_id = uuid.UUID(body["user"]["id"])
    prefix = f"users/{user_id}/"
    assert len(objects_under(raw_s3, stack.s3_bucket, prefix)) == 2
    response = client.post(ERASURE, json={"password": PASSWORD}, headers=headers)
    assert response.status_code == 202
    status_url = response.get_json()["status_url"]
    job_id = _scalar(app, select(Job.id).where(Job.kind == "privacy.erase"))

    log_path = tmp_path / "worker.log"
    # Parked deleting the capture rows: their objects are already gone from the store.
    with parking_trigger(stack_env["DATABASE_URL"], "captures", "true", events="DELETE") as holder:
        kill_when_parked(holder, start_worker({}, log_path, "--no-cron"), log_path)

    assert objects_under(raw_s3, stack.s3_bucket, prefix) == []  # deleted, never recorded
    assert _scalar(app, select(User.id).where(User.id == user_id)) == user_id
    requeue_abandoned(stack_env["REDIS_URL"], "default", job_id)
    _rerun_in_a_worker_process()

    status = client.get(status_url).get_json()
    assert status["status"] == "completed"
    assert status["deleted"]["objects"] == 2
    assert status["deleted"]["captures"] == 2
