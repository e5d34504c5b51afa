"""The export's download link is minted on read, never stored, and dies with the
credentials it was minted under (issue #12 finding 2, SPEC §3 Privacy export)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from irisvue.extensions import db
from tests.support.consent import grant_biometric_consent
from tests.support.images import plain_png
from tests.support.uploads import upload
from tests.support.users import PASSWORD, bearer

EXPORT = "/api/v1/privacy/export"


def _export(client, headers, run_jobs) -> dict:
    created = client.post(EXPORT, headers=headers)
    assert created.status_code == 202, created.get_json()
    run_jobs()
    return _read(client, headers, created.get_json()["id"])


def _read(client, headers, job_id: str) -> dict:
    job = client.get(f"/api/v1/jobs/{job_id}", headers=headers).get_json()
    assert job["status"] == "finished", job
    return job


def _download(app, job: dict):
    result = job["result"]
    assert result["download_url"].endswith(f"?token={result['download_token']}")
    return app.test_client().get(result["download_url"])


def _code(response) -> tuple[int, str | None]:
    body = response.get_json(silent=True) or {}
    return response.status_code, body.get("code")


def test_no_token_is_stored_and_the_link_is_typed(app, client, signed_in, run_jobs):
    headers = signed_in(password=PASSWORD).headers
    job = _export(client, headers, run_jobs)
    result = job["result"]
    assert set(result) == {"size", "captures", "download_url", "download_token", "expires_at"}
    assert result["download_url"].startswith(f"/api/v1/privacy/export/{job['id']}/download?")
    with app.app_context():
        stored = db.session.execute(
            text("SELECT CAST(result AS TEXT) FROM jobs WHERE id = :id"), {"id": job["id"]}
        ).scalar_one()
        every = db.session.execute(text("SELECT CAST(result AS TEXT) FROM jobs")).scalars()
        dumped = " ".join(value or "" for value in every)
    assert "download_url" not in stored and "token" not in stored
    assert result["download_token"] not in dumped
    assert _download(app, job).status_code == 200
    # Read again: a fresh link that works too.
    assert _download(app, _read(client, headers, job["id"])).status_code == 200


def test_the_link_is_absolute_with_public_base_url(app, client, signed_in, run_jobs):
    headers = signed_in(password=PASSWORD).headers
    job = _export(client, headers, run_jobs)
    app.config["PUBLIC_BASE_URL"] = "https://api.example.com"
    try:
        again = _read(client, headers, job["id"])
    finally:
        app.config["PUBLIC_BASE_URL"] = ""
    assert again["result"]["download_url"].startswith(
        f"https://api.example.com/api/v1/privacy/export/{job['id']}/download?token="
    )


def test_the_event_stream_mints_the_link_too(app, client, signed_in, run_jobs):
    headers = signed_in(password=PASSWORD).headers
    job = _export(client, headers, run_jobs)
    stream = client.get(f"/api/v1/jobs/{job['id']}/events", headers=headers)
    assert "download_token" in stream.get_data(as_text=True)


def test_logout_all_voids_the_link(app, client, signed_in, run_jobs):
    headers = signed_in(password=PASSWORD).headers
    job = _export(client, headers, run_jobs)
    assert client.post("/api/v1/auth/logout-all", headers=headers).status_code == 204
    assert _code(_download(app, job)) == (401, "token_revoked")


def test_signing_out_of_one_device_leaves_the_link(app, client, signed_in, run_jobs):
    """Only sign-out *everywhere* voids links: not one device's logout, even the oldest."""
    account = signed_in(password=PASSWORD)
    first = account.headers  # the registration's session: the oldest
    login = client.post(
        "/api/v1/auth/login", json={"email": account.user.email, "password": PASSWORD}
    )
    assert login.status_code == 200, login.get_json()
    second = bearer(login.get_json()["access_token"])
    job = _export(client, second, run_jobs)
    assert client.post("/api/v1/auth/logout", headers=first).status_code == 204
    assert _download(app, job).status_code == 200
    assert client.post("/api/v1/auth/logout-all", headers=second).status_code == 204
    assert _code(_download(app, job)) == (401, "token_revoked")


def test_a_password_change_voids_the_link(app, client, signed_in, run_jobs):
    headers = signed_in(password=PASSWORD).headers
    job = _export(client, headers, run_jobs)
    changed = client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "a-new-long-passphrase-42"},
        headers=headers,
    )
    assert changed.status_code == 204, changed.get_json()
    assert _code(_download(app, job)) == (401, "token_revoked")
    # The session that changed it lives on: reading the job again gives a working link.
    assert _download(app, _read(client, headers, job["id"])).status_code == 200


def test_withdrawing_biometric_consent_voids_the_link(app, client, signed_in, run_jobs):
    headers = signed_in(password=PASSWORD).headers
    job = _export(client, headers, run_jobs)
    withdrawn = client.post("/api/v1/consents/biometric_capture/withdraw", json={}, headers=headers)
    assert withdrawn.status_code == 202, withdrawn.get_json()
    run_jobs()  # the data key is shredded: the link's binding no longer matches
    assert _code(_download(app, job)) == (401, "token_revoked")
    # Consent again and upload: the user has a new data key; the old link stays void.
    grant_biometric_consent(client, headers)
    assert upload(client, headers, plain_png(), "eye.png", "image/png").status_code == 201
    assert _code(_download(app, job)) == (401, "token_revoked")


@pytest.mark.parametrize(
    ("run_erasure", "refusal"),
    [
        # Requested: the account is disabled, so the link's binding is void.
        (False, (401, "token_revoked")),
        # Done: the job row stays as a counter, owned by nobody: no such export.
        (True, (404, "not_found")),
    ],
)
def test_erasure_voids_the_link(app, client, signed_in, run_jobs, run_erasure, refusal):
    headers = signed_in(password=PASSWORD).headers
    job = _export(client, headers, run_jobs)
    erased = client.post("/api/v1/privacy/erasure", json={"password": PASSWORD}, headers=headers)
    assert erased.status_code == 202, erased.get_json()
    if run_erasure:
        run_jobs()
    assert _code(_download(app, job)) == refusal


def test_a_token_of_another_users_job_does_not_open_this_one(app, client, signed_in, run_jobs):
    from irisvue.privacy import export_services

    headers = signed_in(password=PASSWORD).headers
    job = _export(client, headers, run_jobs)
    other = signed_in().user
    with app.test_request_context():
        forged = export_services.download_token(uuid.UUID(job["id"]), other.id)
    response = app.test_client().get(
        f"{EXPORT}/{job['id']}/download", query_string={"token": forged}
    )
    assert _code(response) == (401, "token_revoked")


def test_a_link_minted_without_a_binding_is_refused(app, client, signed_in, run_jobs):
    """A missing or disabled account has no binding: a link minted then used to match
    the disabled owner's (empty) one, leaving only session revocation to stop it.
    Erasure disables the account before its job runs; such a link is invalid."""
    from irisvue.privacy import export_services

    account = signed_in(password=PASSWORD)
    job = _export(client, account.headers, run_jobs)
    erased = client.post(
        "/api/v1/privacy/erasure", json={"password": PASSWORD}, headers=account.headers
    )
    assert erased.status_code == 202, erased.get_json()
    job_id = uuid.UUID(job["id"])
    with app.test_request_context():
        unbound = [
            export_services.download_token(job_id, account.user.id),  # the disabled owner
            export_services.download_token(job_id, uuid.uuid4()),  # no such user
        ]
    for token in unbound:
        response = app.test_client().get(
            f"{EXPORT}/{job_id}/download", query_string={"token": token}
        )
        assert _code(response) == (401, "token_invalid")
