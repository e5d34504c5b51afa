"""Self-service export: the job, the encrypted archive, the signed link, retention."""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from irisvue.extensions import db
from irisvue.models import Job
from irisvue.models.base import utcnow
from irisvue.models.privacy import PrivacyRequest
from irisvue.privacy import export_services
from tests.support.images import jpeg_with_gps, plain_png, png_with_metadata
from tests.support.storage import objects_under, read_object
from tests.support.uploads import CAPTURES, upload

# Fixtures of the capture tests, shared here.


EXPORT = "/api/v1/privacy/export"


def export_prefix(user_id: uuid.UUID) -> str:
    return f"users/{user_id}/exports/"


def finished_export(client, headers, run_jobs) -> dict:
    created = client.post(EXPORT, headers=headers)
    assert created.status_code == 202, created.get_json()
    run_jobs()
    job = client.get(f"/api/v1/jobs/{created.get_json()['id']}", headers=headers).get_json()
    assert job["status"] == "finished", job
    return job


def test_export_end_to_end(app, client, signed_in, run_jobs, raw_s3, stack):
    user, headers = signed_in()
    stored = {}
    for data, name, ctype in (
        (jpeg_with_gps(), "a.jpg", "image/jpeg"),
        (png_with_metadata(), "b.png", "image/png"),
        (plain_png(), "c.png", "image/png"),
    ):
        created = upload(client, headers, data, name, ctype)
        assert created.status_code == 201, created.get_json()
        capture = created.get_json()
        # What the store holds, decrypted: the stripped photo.
        stored[capture["id"]] = client.get(f"{CAPTURES}{capture['id']}/content", headers=headers)
        stored[capture["id"]] = (stored[capture["id"]].data, ctype)

    first = client.post(EXPORT, headers=headers)
    assert first.status_code == 202, first.get_json()
    assert first.headers["Cache-Control"] == "no-store"
    job = first.get_json()
    assert (job["kind"], job["status"], job["result"]) == ("privacy.export", "queued", None)
    second = client.post(EXPORT, headers=headers)
    assert second.status_code == 202
    assert second.get_json()["id"] == job["id"]  # pending: the same job
    with app.app_context():
        requests = db.session.scalars(
            select(PrivacyRequest).where(PrivacyRequest.user_id == user.id)
        ).all()
        assert [(r.kind, r.status) for r in requests] == [("export", "pending")]

    assert run_jobs() >= 1
    done = client.get(f"/api/v1/jobs/{job['id']}", headers=headers).get_json()
    assert (done["status"], done["progress"], done["error"]) == ("finished", 100, None)
    url = done["result"]["download_url"]
    assert url.startswith(f"{EXPORT}/{job['id']}/download?token=")

    # The bucket holds ciphertext only, SSE-S3 as configured.
    key = f"{export_prefix(user.id)}{job['id']}.zip"
    assert objects_under(raw_s3, stack.s3_bucket, export_prefix(user.id)) == [key]
    raw = read_object(raw_s3, stack.s3_bucket, key)
    assert not raw.startswith(b"PK")
    assert b"account.json" not in raw and user.email.encode() not in raw
    assert (
        raw_s3.stat_object(stack.s3_bucket, key).metadata.get("x-amz-server-side-encryption")
        == "AES256"
    )

    download = app.test_client().get(url)  # no bearer token
    assert download.status_code == 200, download.get_json()
    assert download.headers["Cache-Control"] == "no-store"
    assert download.headers["Content-Type"] == "application/zip"
    assert download.headers["Content-Disposition"].startswith("attachment; filename=")
    assert int(download.headers["Content-Length"]) == len(download.data)
    archive = zipfile.ZipFile(io.BytesIO(download.data))
    assert archive.testzip() is None
    names = set(archive.namelist())
    expected_captures = {
        f"captures/{cid}.{'png' if ctype == 'image/png' else 'jpg'}"
        for cid, (_, ctype) in stored.items()
    }
    assert {"README.txt", "account.json", "consents.json", "sessions.json"} <= names
    assert expected_captures <= names
    for cid, (data, ctype) in stored.items():
        ext = "png" if ctype == "image/png" else "jpg"
        assert archive.read(f"captures/{cid}.{ext}") == data
    account = json.loads(archive.read("account.json"))
    assert (account["id"], account["email"]) == (str(user.id), user.email)
    consents = json.loads(archive.read("consents.json"))
    assert consents and consents[0]["consent_type"] == "biometric_capture"
    assert consents[0]["document_version"] >= 1 and len(consents[0]["document_sha256"]) == 64
    assert consents[0]["record_hash"]
    sessions = json.loads(archive.read("sessions.json"))
    assert sessions and "refresh_jti" not in sessions[0]
    assert "consents.json" in archive.read("README.txt").decode()

    with app.app_context():
        request = db.session.scalars(
            select(PrivacyRequest).where(PrivacyRequest.user_id == user.id)
        ).one()
        assert request.status == "completed" and request.completed_at is not None

    # Finished: a new request starts a new export.
    again = client.post(EXPORT, headers=headers).get_json()
    assert again["id"] != job["id"]


def test_export_needs_a_bearer_token(client):
    response = client.post(EXPORT)
    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("application/problem+json")


def test_download_link_rejects_bad_tokens(app, client, make_user, auth_headers, run_jobs):
    user = make_user()
    headers = auth_headers(user)
    job = finished_export(client, headers, run_jobs)
    url = job["result"]["download_url"]
    path = urlsplit(url).path
    token = parse_qs(urlsplit(url).query)["token"][0]
    anonymous = app.test_client()
    assert anonymous.get(url).status_code == 200

    def code(response) -> tuple[int, str]:
        assert response.headers["Content-Type"].startswith("application/problem+json")
        return response.status_code, response.get_json()["code"]

    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert code(anonymous.get(path, query_string={"token": tampered})) == (401, "token_invalid")
    with app.test_request_context():
        other = export_services.download_token(uuid.uuid4(), user.id)
        expired = export_services.download_token(
            uuid.UUID(job["id"]), user.id, issued_at=int(time.time()) - 25 * 3600
        )
        fresh_unknown = uuid.uuid4()
        unknown_token = export_services.download_token(fresh_unknown, user.id)
    assert code(anonymous.get(path, query_string={"token": other})) == (401, "token_invalid")
    assert code(anonymous.get(path, query_string={"token": expired})) == (401, "token_expired")
    unknown = anonymous.get(
        f"{EXPORT}/{fresh_unknown}/download", query_string={"token": unknown_token}
    )
    assert code(unknown) == (404, "not_found")
    assert anonymous.get(path).status_code == 422  # no token at all


def test_purge_deletes_archives_past_retention(app, client, make_user, auth_headers, run_jobs):
    user = make_user()
    headers = auth_headers(user)
    old = finished_export(client, headers, run_jobs)
    recent = finished_export(client, headers, run_jobs)
    with app.app_context():
        row = db.session.get(Job, uuid.UUID(old["id"]))
        row.finished_at = utcnow() - timedelta(days=8)
        db.session.commit()
        assert export_services.purge_expired_exports() == 1
        assert export_services.purge_expired_exports() == 0  # nothing left to purge
        from irisvue.storage import get_storage

        old_key = export_services.archive_key(user.id, uuid.UUID(old["id"]))
        recent_key = export_services.archive_key(user.id, uuid.UUID(recent["id"]))
        assert get_storage().stat(old_key) is None
        assert get_storage().stat(recent_key) is not None
    gone = app.test_client().get(old["result"]["download_url"])
    assert (gone.status_code, gone.get_json()["code"]) == (404, "not_found")
    assert app.test_client().get(recent["result"]["download_url"]).status_code == 200
    job = client.get(f"/api/v1/jobs/{old['id']}", headers=headers).get_json()
    assert job["result"]["download_url"] is None and job["result"]["download_token"] is None
