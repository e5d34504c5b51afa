"""Withdraw, consent again, upload: the withdrawal destroys only what it covered.

The destruction job runs after the user may already have consented again and
uploaded; what was uploaded under the new consent must survive it, while
everything from before the withdrawal is unreadable at once and gone once the
job has run.
"""

from __future__ import annotations

import hashlib
import io
import threading
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import select

from irisvue.captures.jobs import DESTROY_JOB, destroy_biometrics_job
from irisvue.extensions import db
from irisvue.jobs import outbox
from irisvue.models import Capture, Job, UserKey
from irisvue.storage.local import TMP_PREFIX, LocalStorage
from tests.support.consent import CONSENTS, grant_biometric_consent, record
from tests.support.images import BigPng, plain_png
from tests.support.storage import MiB, objects_under, user_prefix
from tests.support.uploads import CAPTURES, StreamedBody, multipart_chunks, post_streamed, upload


def _withdraw(client, headers, how: str):
    if how == "withdraw":
        return client.post(f"{CONSENTS}biometric_capture/withdraw", headers=headers)
    return record(client, headers, "biometric_capture", "bipa", granted=False)


def _upload_png(client, headers, size: tuple[int, int]) -> tuple[str, bytes]:
    photo = plain_png(size)  # nothing to strip: stored and read back byte for byte
    response = upload(client, headers, photo, "iris.png", "image/png")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["sha256"] == hashlib.sha256(photo).hexdigest()
    return body["id"], photo


def _content(client, headers, capture_id: str):
    return client.get(f"{CAPTURES}{capture_id}/content", headers=headers)


def _key_ids(app, user_id: uuid.UUID) -> set[uuid.UUID]:
    with app.app_context():
        return set(db.session.scalars(select(UserKey.id).where(UserKey.user_id == user_id)))


def _capture_ids(app, user_id: uuid.UUID) -> set[str]:
    with app.app_context():
        return {
            str(i) for i in db.session.scalars(select(Capture.id).where(Capture.user_id == user_id))
        }


def _job(app, job_id: str) -> Job:
    with app.app_context():
        job = db.session.get(Job, uuid.UUID(job_id))
        db.session.expunge(job)
        return job


def _objects(raw_s3, stack, user_id: uuid.UUID) -> set[str]:
    return set(objects_under(raw_s3, stack.s3_bucket, user_prefix(user_id)))


@pytest.mark.parametrize("how", ["withdraw", "refuse"])
def test_captures_uploaded_after_consenting_again_survive_the_withdrawal_job(
    app, client, signed_in, run_jobs, raw_s3, stack, how
):
    user, headers = signed_in()
    old_ids = [_upload_png(client, headers, (40 + n, 30))[0] for n in range(2)]
    old_keys = _key_ids(app, user.id)
    assert len(old_keys) == 1

    withdrawn = _withdraw(client, headers, how)
    assert withdrawn.status_code == 202, withdrawn.get_json()
    job_id = withdrawn.get_json()["job"]["id"]
    assert _job(app, job_id).args == {"consent_record_id": withdrawn.get_json()["id"]}
    grant_biometric_consent(client, headers)
    new_id, photo = _upload_png(client, headers, (48, 36))
    new_keys = _key_ids(app, user.id)

    assert run_jobs() >= 1

    job = _job(app, job_id)
    assert (job.status, job.result) == ("finished", {"captures": 2, "objects": 2})
    content = _content(client, headers, new_id)
    assert content.status_code == 200, content.get_json()
    assert content.data == photo
    assert _capture_ids(app, user.id) == {new_id}
    assert _objects(raw_s3, stack, user.id) == {f"{user_prefix(user.id)}{new_id}"}
    assert _key_ids(app, user.id) == new_keys
    assert new_keys.isdisjoint(old_keys)
    for old_id in old_ids:
        assert client.get(f"{CAPTURES}{old_id}", headers=headers).status_code == 404
    listed = client.get(CAPTURES, headers=headers).get_json()["items"]
    assert [item["id"] for item in listed] == [new_id]


def test_old_captures_are_unreadable_as_soon_as_consent_is_withdrawn(
    app, client, signed_in, run_jobs
):
    user, headers = signed_in()
    old_id, _ = _upload_png(client, headers, (40, 30))

    assert _withdraw(client, headers, "withdraw").status_code == 202

    # The data key went in the withdrawal's own transaction: no job has run yet.
    assert _key_ids(app, user.id) == set()
    gone = _content(client, headers, old_id)
    assert (gone.status_code, gone.get_json()["code"]) == (410, "content_destroyed")
    # A new key after consenting again does not make the old capture readable.
    grant_biometric_consent(client, headers)
    new_id, photo = _upload_png(client, headers, (48, 36))
    still_gone = _content(client, headers, old_id)
    assert (still_gone.status_code, still_gone.get_json()["code"]) == (410, "content_destroyed")
    assert _content(client, headers, new_id).data == photo
    assert run_jobs() >= 1
    assert _capture_ids(app, user.id) == {new_id}


def test_the_withdrawal_job_is_idempotent(app, client, signed_in, run_jobs, raw_s3, stack):
    user, headers = signed_in()
    _upload_png(client, headers, (40, 30))
    withdrawn = _withdraw(client, headers, "withdraw")
    grant_biometric_consent(client, headers)
    new_id, photo = _upload_png(client, headers, (48, 36))
    assert run_jobs() >= 1
    keys_after_first_run = _key_ids(app, user.id)

    with app.app_context():  # the same job once more, as a retry would run it
        job = db.session.get(Job, uuid.UUID(withdrawn.get_json()["job"]["id"]))
        assert destroy_biometrics_job(job) == {"captures": 0, "objects": 0}

    assert _key_ids(app, user.id) == keys_after_first_run
    assert _capture_ids(app, user.id) == {new_id}
    assert _objects(raw_s3, stack, user.id) == {f"{user_prefix(user.id)}{new_id}"}
    assert _content(client, headers, new_id).data == photo


def test_each_of_two_withdrawals_destroys_only_its_own_captures(
    app, client, signed_in, run_jobs, raw_s3, stack
):
    user, headers = signed_in()
    first_id, _ = _upload_png(client, headers, (40, 30))
    first = _withdraw(client, headers, "withdraw").get_json()["job"]["id"]
    grant_biometric_consent(client, headers)
    second_id, _ = _upload_png(client, headers, (44, 30))
    second = _withdraw(client, headers, "refuse").get_json()["job"]["id"]
    grant_biometric_consent(client, headers)
    third_id, photo = _upload_png(client, headers, (48, 36))

    assert run_jobs() >= 2

    assert _job(app, first).result == {"captures": 1, "objects": 1}
    assert _job(app, second).result == {"captures": 1, "objects": 1}
    assert _capture_ids(app, user.id) == {third_id}
    assert _objects(raw_s3, stack, user.id) == {f"{user_prefix(user.id)}{third_id}"}
    assert _content(client, headers, third_id).data == photo
    for gone in (first_id, second_id):
        assert client.get(f"{CAPTURES}{gone}", headers=headers).status_code == 404


def test_an_orphan_object_from_before_the_withdrawal_is_destroyed(
    app, client, signed_in, run_jobs, raw_s3, stack
):
    user, headers = signed_in()
    _upload_png(client, headers, (40, 30))
    # An object without a row: an upload whose cleanup failed, say.
    orphan = f"{user_prefix(user.id)}{uuid.uuid4()}"
    raw_s3.put_object(stack.s3_bucket, orphan, io.BytesIO(b"ciphertext"), 10)
    other_user, other = signed_in()
    other_id, other_photo = _upload_png(client, other, (40, 30))

    withdrawn = _withdraw(client, headers, "withdraw")
    assert run_jobs() >= 1

    job = _job(app, withdrawn.get_json()["job"]["id"])
    assert (job.status, job.result) == ("finished", {"captures": 1, "objects": 2})
    assert _objects(raw_s3, stack, user.id) == set()
    assert _capture_ids(app, user.id) == set()
    assert _capture_ids(app, other_user.id) == {other_id}
    assert _content(client, other, other_id).data == other_photo


def test_a_job_queued_without_its_consent_record_still_destroys_everything(
    app, client, signed_in, run_jobs, raw_s3, stack
):
    """Jobs queued before withdrawals carried their record keep their old meaning."""
    user, headers = signed_in()
    _upload_png(client, headers, (40, 30))
    with app.app_context():
        job_id = str(outbox.submit(DESTROY_JOB, user_id=user.id).id)
        outbox.commit()

    assert run_jobs() >= 1

    assert _job(app, job_id).result == {"captures": 1, "objects": 1}
    assert _capture_ids(app, user.id) == set()
    assert _key_ids(app, user.id) == set()
    assert _objects(raw_s3, stack, user.id) == set()


def _interrupted_at(
    chunks: Callable[[], Iterator[bytes]], limit: int, interrupt: Callable[[], None]
) -> Callable[[], Iterator[bytes]]:
    """The body's chunks; `interrupt()` runs once, after `limit` bytes went out."""

    def generate() -> Iterator[bytes]:
        sent, done = 0, False
        for chunk in chunks():
            yield chunk
            sent += len(chunk)
            if sent >= limit and not done:
                done = True
                interrupt()

    return generate


def test_an_upload_in_flight_across_withdrawal_and_new_consent_is_refused(
    app, client, signed_in, run_jobs, raw_s3, stack
):
    user, headers = signed_in()
    old_id, _ = _upload_png(client, headers, (40, 30))  # the upload below reuses this key
    statuses: list[int] = []

    def withdraw_and_consent_again() -> None:
        # Other requests, on their own thread, while the upload is streaming.
        def requests() -> None:
            statuses.append(_withdraw(client, headers, "withdraw").status_code)
            grant_biometric_consent(client, headers)
            statuses.append(201)

        worker = threading.Thread(target=requests)
        worker.start()
        worker.join(30)

    photo = BigPng(2 * MiB)
    # Length given, so the body is generated (and interrupted) only while it is sent.
    length = sum(len(chunk) for chunk in multipart_chunks(photo.chunks)())
    body = StreamedBody(
        multipart_chunks(_interrupted_at(photo.chunks, MiB, withdraw_and_consent_again)), length
    )
    response = post_streamed(client, headers, body)

    assert statuses == [202, 201]
    assert response.status_code == 409, response.get_json()
    assert response.get_json()["code"] == "upload_conflict"
    assert _objects(raw_s3, stack, user.id) == {f"{user_prefix(user.id)}{old_id}"}
    assert run_jobs() >= 1
    assert _capture_ids(app, user.id) == set()
    assert _objects(raw_s3, stack, user.id) == set()


def test_local_storage_lists_a_prefix_without_files_in_flight(tmp_path):
    storage = LocalStorage(tmp_path)
    storage.put("users/a/captures/one", [b"1"])
    storage.put("users/a/captures/two", [b"22"])
    storage.put("users/ab/captures/three", [b"333"])
    (tmp_path / "users" / "a" / "captures" / f"{TMP_PREFIX}x").write_bytes(b"partial")

    listed = {info.key: info for info in storage.list_prefix("users/a/")}

    assert sorted(listed) == ["users/a/captures/one", "users/a/captures/two"]
    assert listed["users/a/captures/two"].size == 2
    assert listed["users/a/captures/two"].last_modified is not None
    assert list(storage.list_prefix("users/missing/")) == []


def test_an_export_between_consenting_again_and_the_job_holds_only_readable_captures(
    app, client, signed_in
):
    import zipfile

    from irisvue.jobs.runner import execute

    _, headers = signed_in()
    old_id, _ = _upload_png(client, headers, (40, 30))
    assert _withdraw(client, headers, "withdraw").status_code == 202
    grant_biometric_consent(client, headers)
    new_id, photo = _upload_png(client, headers, (48, 36))
    requested = client.post("/api/v1/privacy/export", headers=headers)
    assert requested.status_code == 202, requested.get_json()
    export_id = requested.get_json()["id"]

    # The export runs before the withdrawal's destruction job (still queued).
    with app.app_context():
        execute(uuid.UUID(export_id))
    job = client.get(f"/api/v1/jobs/{export_id}", headers=headers).get_json()
    assert job["status"] == "finished", job
    archive = client.get(job["result"]["download_url"])
    assert archive.status_code == 200
    with zipfile.ZipFile(io.BytesIO(archive.data)) as opened:
        names = set(opened.namelist())
        assert opened.read(f"captures/{new_id}.png") == photo
    assert f"captures/{old_id}.png" not in names
