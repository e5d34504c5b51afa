"""Withdrawing biometric consent destroys every biometric trace of the user (RQ job)."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from irisvue.captures.destruction import destroy_biometrics
from irisvue.extensions import db
from irisvue.models import Capture, Job, UserKey
from tests.support.images import jpeg_with_gps, plain_png
from tests.support.storage import objects_under, user_prefix
from tests.support.uploads import CAPTURES, upload


def _rows(app, model, user_id: uuid.UUID) -> int:
    with app.app_context():
        return db.session.scalar(
            select(func.count()).select_from(model).where(model.user_id == user_id)
        )


def test_withdrawal_destroys_objects_rows_and_key(app, client, signed_in, run_jobs, raw_s3, stack):
    user, headers = signed_in()
    other_user, other = signed_in()
    for photo in (jpeg_with_gps(), plain_png()):
        assert upload(client, headers, photo).status_code == 201
    kept = upload(client, other, plain_png()).get_json()
    bucket = stack.s3_bucket
    assert len(objects_under(raw_s3, bucket, user_prefix(user.id))) == 2
    assert _rows(app, UserKey, user.id) == 1

    response = client.post("/api/v1/consents/biometric_capture/withdraw", headers=headers)
    assert response.status_code == 202
    job_id = uuid.UUID(response.get_json()["job"]["id"])
    assert run_jobs() >= 1

    with app.app_context():
        job = db.session.get(Job, job_id)
        assert (job.status, job.result) == ("finished", {"captures": 2, "objects": 2})
    assert objects_under(raw_s3, bucket, user_prefix(user.id)) == []
    assert _rows(app, Capture, user.id) == 0
    assert _rows(app, UserKey, user.id) == 0
    assert client.get(CAPTURES, headers=headers).get_json()["items"] == []
    # A new upload is refused until consent is given again.
    assert upload(client, headers, plain_png()).get_json()["code"] == "consent_required"
    # Nobody else's data was touched.
    assert objects_under(raw_s3, bucket, user_prefix(other_user.id)) == [
        f"{user_prefix(other_user.id)}{kept['id']}"
    ]
    assert client.get(f"{CAPTURES}{kept['id']}/content", headers=other).status_code == 200


def test_destruction_is_idempotent(app, client, signed_in):
    user, headers = signed_in()
    assert upload(client, headers, plain_png()).status_code == 201
    with app.app_context():
        assert destroy_biometrics(user.id) == {"captures": 1, "objects": 1}
        assert destroy_biometrics(user.id) == {"captures": 0, "objects": 0}
        assert destroy_biometrics(None) == {"captures": 0, "objects": 0}
