"""A real `worker.py` SIGKILLed in the middle of an export, then the job retried.

The erasure case is tests/faults/test_erasure.py. Here the kill lands
while the archive is being streamed into the store: a test-only trigger parks
the worker's progress update (after the first capture) on an advisory lock the
test holds, so the kill happens at a known point without any sleep.
"""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from irisvue.extensions import db
from irisvue.jobs.dispatch import run_burst_worker
from irisvue.models import Job, PrivacyRequest
from tests.support.faults import kill_when_parked, parking_trigger, row_counts
from tests.support.images import jpeg_with_gps, plain_png
from tests.support.jobs import requeue_abandoned
from tests.support.servers import start_worker
from tests.support.storage import objects_under
from tests.support.uploads import upload

pytestmark = pytest.mark.slow


@pytest.fixture
def parked_export_progress(stack_env) -> Iterator[sa.Connection]:
    """An export's progress update past its first step parks; yields the lock holder."""
    when = "NEW.kind = 'privacy.export' AND NEW.progress > 5 AND NEW.progress < 100"
    with parking_trigger(stack_env["DATABASE_URL"], "jobs", when) as holder:
        yield holder


def _job(app, job_id: uuid.UUID) -> Job:
    with app.app_context():
        job = db.session.get(Job, job_id)
        db.session.expunge(job)
        return job


def test_worker_killed_mid_export_is_retried_and_stores_one_archive(
    app, client, signed_in, parked_export_progress, raw_s3, stack, stack_env, tmp_path
):
    user, headers = signed_in()
    photos = [upload(client, headers, data) for data in (jpeg_with_gps(), plain_png())]
    assert [p.status_code for p in photos] == [201, 201]
    run_burst_worker(app)  # anything the setup queued: only the export is left
    response = client.post("/api/v1/privacy/export", headers=headers)
    assert response.status_code == 202, response.get_json()
    job_id = uuid.UUID(response.get_json()["id"])
    exports_prefix = f"users/{user.id}/exports/"
    before = row_counts(app)

    log_path = tmp_path / "worker.log"
    proc = start_worker({}, log_path, "--no-cron")
    # The dead worker's transaction goes with it; the lock is released only then.
    kill_when_parked(parked_export_progress, proc, log_path)

    # Killed half-way: the job is started at its first step, no archive was stored.
    killed = _job(app, job_id)
    assert (killed.status, killed.progress, killed.attempts) == ("started", 5, 1)
    assert objects_under(raw_s3, stack.s3_bucket, exports_prefix) == []

    requeue_abandoned(stack_env["REDIS_URL"], "exports", job_id)
    assert run_burst_worker(app) == 1

    done = client.get(f"/api/v1/jobs/{job_id}", headers=headers).get_json()
    assert (done["status"], done["progress"], done["error"]) == ("finished", 100, None)
    assert _job(app, job_id).attempts == 2
    # One archive, under the job's own key: the retry overwrote, never duplicated.
    assert objects_under(raw_s3, stack.s3_bucket, exports_prefix) == [
        f"{exports_prefix}{job_id}.zip"
    ]
    archive = zipfile.ZipFile(
        io.BytesIO(app.test_client().get(done["result"]["download_url"]).data)
    )
    assert archive.testzip() is None
    names = archive.namelist()
    assert sorted(n for n in names if n.startswith("captures/")) == sorted(
        f"captures/{p.get_json()['id']}.{'jpg' if i == 0 else 'png'}" for i, p in enumerate(photos)
    )
    assert row_counts(app) == before  # no row added or lost by the crash and the retry
    with app.app_context():
        request = db.session.scalar(
            sa.select(PrivacyRequest).where(PrivacyRequest.user_id == user.id)
        )
        assert request.status == "completed"
        db.session.remove()
