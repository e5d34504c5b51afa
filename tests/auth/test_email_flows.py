"""Verification and password reset, end to end: API → outbox → RQ worker → SMTP."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

from sqlalchemy import select, update

from irisvue.extensions import db
from irisvue.models import AuditEvent, EmailToken, Job
from irisvue.models.base import utcnow
from tests.support.users import PASSWORD, bearer, token_from

ME = "/api/v1/auth/me"
VERIFY = "/api/v1/auth/verify-email"
VERIFY_REQUEST = "/api/v1/auth/verify-email/request"
RESET = "/api/v1/auth/password-reset"
RESET_REQUEST = "/api/v1/auth/password-reset/request"
LOGIN = "/api/v1/auth/login"


def _email() -> str:
    return f"mail-{uuid.uuid4().hex[:8]}@example.com"


def test_registration_sends_a_verification_email(app, client, register, mailbox, run_jobs):
    email = _email()
    account = register(client, email=email)
    assert run_jobs() >= 1
    messages = mailbox.to(email)
    assert len(messages) == 1
    assert "Confirm your email" in messages[0]["Subject"]
    token = token_from(messages[0])
    html = messages[0].get_body(preferencelist=("html",)).get_content()
    assert f"token={token}" in html

    with app.app_context():
        # Neither the address nor the token is in a job; only the token's hash is stored.
        for job in db.session.scalars(select(Job)):
            assert job.args == {} and job.status == "finished"
            assert email not in repr(job.result) and token not in repr(job.result)
        stored = db.session.scalars(select(EmailToken)).one()
        assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert stored.purpose == "verify_email"
        lifetime = stored.expires_at - stored.created_at
        assert timedelta(hours=23, minutes=59) < lifetime <= timedelta(hours=24)

    verified = client.post(VERIFY, json={"token": token})
    assert verified.status_code == 200
    assert verified.headers["Cache-Control"] == "no-store"
    assert verified.get_json()["is_verified"] is True
    me = client.get(ME, headers=bearer(account["access_token"])).get_json()
    assert me["is_verified"] is True

    replay = client.post(VERIFY, json={"token": token})
    assert replay.status_code == 403
    assert replay.get_json()["code"] == "email_token_invalid"
    already = client.post(VERIFY_REQUEST, headers=bearer(account["access_token"]))
    assert already.status_code == 409
    assert already.get_json()["code"] == "already_verified"


def test_a_new_verification_request_voids_the_old_token(client, register, mailbox, run_jobs):
    email = _email()
    account = register(client, email=email)
    run_jobs()
    old = token_from(mailbox.to(email)[-1])
    again = client.post(VERIFY_REQUEST, headers=bearer(account["access_token"]))
    assert again.status_code == 202
    assert again.get_json()["status"] == "accepted"
    run_jobs()
    assert len(mailbox.to(email)) == 2
    new = token_from(mailbox.to(email)[-1])
    assert new != old
    assert client.post(VERIFY, json={"token": old}).get_json()["code"] == "email_token_invalid"
    assert client.post(VERIFY, json={"token": new}).status_code == 200


def test_verification_request_needs_a_token(client):
    response = client.post(VERIFY_REQUEST)
    assert response.status_code == 401
    assert response.get_json()["code"] == "token_missing"


def test_expired_and_unknown_verification_tokens(app, client, register, mailbox, run_jobs):
    email = _email()
    register(client, email=email)
    run_jobs()
    token = token_from(mailbox.to(email)[-1])
    with app.app_context():
        db.session.execute(update(EmailToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    expired = client.post(VERIFY, json={"token": token})
    assert expired.status_code == 403
    assert expired.get_json()["code"] == "email_token_expired"
    unknown = client.post(VERIFY, json={"token": "x" * 43})
    assert unknown.status_code == 403
    assert unknown.get_json()["code"] == "email_token_invalid"
    extra = client.post(VERIFY, json={"token": token, "user_id": str(uuid.uuid4())})
    assert extra.status_code == 422


def test_reset_request_does_not_tell_whether_the_account_exists(
    app, client, register, mailbox, run_jobs
):
    email = _email()
    register(client, email=email)
    run_jobs()
    mailbox.clear()
    known = client.post(RESET_REQUEST, json={"email": email.upper()})
    unknown = client.post(RESET_REQUEST, json={"email": _email()})
    assert known.status_code == unknown.status_code == 202
    assert known.get_json() == unknown.get_json()
    assert known.headers["Cache-Control"] == unknown.headers["Cache-Control"] == "no-store"
    run_jobs()
    assert len(mailbox.messages) == 1
    assert mailbox.to(email)


def test_password_reset_end_to_end(app, client, register, mailbox, run_jobs):
    email = _email()
    account = register(client, email=email)
    other = client.post(LOGIN, json={"email": email, "password": PASSWORD}).get_json()
    run_jobs()
    mailbox.clear()
    assert client.post(RESET_REQUEST, json={"email": email}).status_code == 202
    run_jobs()
    message = mailbox.to(email)[-1]
    assert "Reset your" in message["Subject"]
    token = token_from(message)
    with app.app_context():
        stored = db.session.scalars(
            select(EmailToken).where(EmailToken.purpose == "password_reset")
        ).one()
        assert timedelta(minutes=59) < stored.expires_at - stored.created_at <= timedelta(hours=1)

    common = client.post(RESET, json={"token": token, "new_password": "qwertyuiop"})
    assert common.status_code == 422
    assert common.get_json()["code"] == "password_too_common"

    new_password = "saffron-otter-galaxy-19"
    done = client.post(RESET, json={"token": token, "new_password": new_password})
    assert done.status_code == 204
    # Every session is revoked, and only the new password works.
    for pair in (account, other):
        response = client.get(ME, headers=bearer(pair["access_token"]))
        assert response.get_json()["code"] == "token_revoked"
        refreshed = client.post("/api/v1/auth/refresh", headers=bearer(pair["refresh_token"]))
        assert refreshed.get_json()["code"] == "token_revoked"
    assert client.post(LOGIN, json={"email": email, "password": PASSWORD}).status_code == 401
    assert client.post(LOGIN, json={"email": email, "password": new_password}).status_code == 200

    replay = client.post(RESET, json={"token": token, "new_password": "another-fine-phrase-3"})
    assert replay.status_code == 403
    assert replay.get_json()["code"] == "email_token_invalid"
    assert client.post(LOGIN, json={"email": email, "password": new_password}).status_code == 200
    with app.app_context():
        events = db.session.scalars(select(AuditEvent.event)).all()
        assert "password_reset_requested" in events and "password_reset" in events


def test_reset_token_cannot_verify_email_and_vice_versa(client, register, mailbox, run_jobs):
    email = _email()
    register(client, email=email)
    run_jobs()
    verify_token = token_from(mailbox.to(email)[-1])
    client.post(RESET_REQUEST, json={"email": email})
    run_jobs()
    reset_token = token_from(mailbox.to(email)[-1])
    assert client.post(VERIFY, json={"token": reset_token}).status_code == 403
    wrong = client.post(RESET, json={"token": verify_token, "new_password": "saffron-otter-9"})
    assert wrong.status_code == 403
