"""Exports racing erasure and withdrawal (issue #12 finding 13, SPEC §9).

An export running while its user is erased leaves no archive, key or job
result, whichever finishes first; an export whose captures were destroyed
after it was built answers 410 before sending a byte.
"""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import func, select

from irisvue.extensions import db
from irisvue.models import Job, UserKey
from tests.support.consent import grant_biometric_consent
from tests.support.images import plain_png
from tests.support.jobs import requeue_abandoned
from tests.support.servers import kill_group, start_worker
from tests.support.storage import objects_under
from tests.support.uploads import upload
from tests.support.users import PASSWORD, account_with_data

EXPORT = "/api/v1/privacy/export"
ERASURE = "/api/v1/privacy/erasure"
# The worker waits this long before writing the archive: the erasure happens meanwhile.
EXPORT_PAUSE = "15"


def _job(app, job_id: uuid.UUID) -> Job:
    with app.app_context():
        job = db.session.get(Job, job_id)
        db.session.expunge(job)
        db.session.remove()
        return job


def _wait_for(app, job_id: uuid.UUID, done, proc, log_path, timeout: float = 90.0) -> Job:
    deadline = time.monotonic() + timeout
    while not done(job := _job(app, job_id)):
        assert proc.poll() is None, log_path.read_text()[-3000:]
        assert time.monotonic() < deadline, log_path.read_text()[-3000:]
        time.sleep(0.1)
    return job


def _ended(job: Job) -> bool:
    return job.status in ("finished", "failed")


def _user_keys(app, user_id: uuid.UUID) -> int:
    with app.app_context():
        count = db.session.scalar(
            select(func.count()).select_from(UserKey).where(UserKey.user_id == user_id)
        )
        db.session.remove()
        return count


def _paused_export(app, client, headers, tmp_path, **worker_env: str):
    """An export a real worker has started and paused before writing its archive."""
    job_id = uuid.UUID(client.post(EXPORT, headers=headers).get_json()["id"])
    log_path = tmp_path / "worker.log"
    env = {"EXPORT_TEST_PAUSE_SECONDS": EXPORT_PAUSE, **worker_env}
    proc = start_worker(env, log_path, "--no-cron")
    _wait_for(app, job_id, lambda job: job.progress >= 5, proc, log_path)
    return job_id, proc, log_path


@pytest.mark.slow
def test_an_erasure_completed_during_an_export_leaves_nothing_behind(
    app, client, consent_documents, run_jobs, raw_s3, stack, tmp_path
):
    body, headers = account_with_data(app, client)
    user_id = uuid.UUID(body["user"]["id"])
    job_id, proc, log_path = _paused_export(app, client, headers, tmp_path)
    try:
        erasure = client.post(ERASURE, json={"password": PASSWORD}, headers=headers)
        assert erasure.status_code == 202, erasure.get_json()
        assert run_jobs() >= 1  # the erasure runs to its end here, the export still waits
        assert client.get(erasure.get_json()["status_url"]).get_json()["status"] == "completed"

        job = _wait_for(
            app, job_id, lambda job: job.status in ("finished", "failed"), proc, log_path
        )
    finally:
        kill_group(proc)
    # The export wrote its archive after the erasure deleted `users/<id>/`: it deleted it.
    assert (job.status, job.error, job.result) == ("failed", "user_gone", None)
    assert objects_under(raw_s3, stack.s3_bucket, f"users/{user_id}/") == []
    assert _user_keys(app, user_id) == 0


@pytest.mark.slow
def test_an_export_finishing_after_the_erasure_request_offers_nothing(
    app, client, consent_documents, run_jobs, raw_s3, stack, stack_env, tmp_path
):
    body, headers = account_with_data(app, client)
    user_id = uuid.UUID(body["user"]["id"])
    # After the export the same worker takes the erasure and stops after crypto-shredding:
    # the archive prefix is still there to look at.
    job_id, proc, log_path = _paused_export(
        app, client, headers, tmp_path, ERASURE_TEST_PAUSE_SECONDS="120"
    )
    try:
        erasure = client.post(ERASURE, json={"password": PASSWORD}, headers=headers)
        assert erasure.status_code == 202, erasure.get_json()
        job = _wait_for(
            app, job_id, lambda job: job.status in ("finished", "failed"), proc, log_path
        )
        # The account was disabled before the export's end: no archive, no link.
        assert (job.status, job.error, job.result) == ("failed", "user_gone", None)
        assert objects_under(raw_s3, stack.s3_bucket, f"users/{user_id}/exports/") == []
        with app.app_context():
            erase_id = db.session.scalar(select(Job.id).where(Job.kind == "privacy.erase"))
            db.session.remove()
        _wait_for(app, erase_id, lambda job: job.status == "started", proc, log_path)
    finally:
        kill_group(proc)

    # The erasure the killed worker had started runs to its end (it is idempotent).
    requeue_abandoned(stack_env["REDIS_URL"], "default", erase_id)
    run_jobs()
    assert client.get(erasure.get_json()["status_url"]).get_json()["status"] == "completed"
    assert objects_under(raw_s3, stack.s3_bucket, f"users/{user_id}/") == []
    assert _user_keys(app, user_id) == 0


def _finished_export(client, headers, run_jobs) -> str:
    created = client.post(EXPORT, headers=headers)
    assert created.status_code == 202, created.get_json()
    run_jobs()
    return created.get_json()["id"]


def _download_url(client, headers, job_id: str) -> str:
    job = client.get(f"/api/v1/jobs/{job_id}", headers=headers).get_json()
    assert job["status"] == "finished", job
    return job["result"]["download_url"]


def test_an_export_whose_captures_were_destroyed_answers_410_before_any_byte(
    app, client, signed_in, run_jobs
):
    _, headers = signed_in()
    assert upload(client, headers, plain_png()).status_code == 201
    job_id = _finished_export(client, headers, run_jobs)
    assert app.test_client().get(_download_url(client, headers, job_id)).status_code == 200

    withdrawn = client.post("/api/v1/consents/biometric_capture/withdraw", headers=headers)
    assert withdrawn.status_code == 202, withdrawn.get_json()
    run_jobs()  # the destruction job

    def gone() -> None:
        # The link as the job offers it now, so only the archive's state decides.
        response = app.test_client().get(_download_url(client, headers, job_id))
        assert response.status_code == 410, (response.status_code, response.data[:200])
        assert response.headers["Content-Type"].startswith("application/problem+json")
        assert response.get_json()["code"] == "content_destroyed"

    gone()  # the user has no data key any more
    # Consent again and upload: a new data key, which cannot read the old archive.
    grant_biometric_consent(client, headers)
    assert upload(client, headers, plain_png()).status_code == 201
    gone()
