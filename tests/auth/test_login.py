from __future__ import annotations

import uuid

from sqlalchemy import select, update

from irisvue.extensions import db
from irisvue.models import AuditEvent, User
from tests.support.users import PASSWORD, bearer

LOGIN = "/api/v1/auth/login"


def _email() -> str:
    return f"login-{uuid.uuid4().hex[:8]}@example.com"


def test_login_returns_a_token_pair(client, register):
    email = _email()
    register(client, email=email)
    response = client.post(LOGIN, json={"email": f"  {email.upper()}", "password": PASSWORD})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    me = client.get("/api/v1/auth/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.get_json()["email"] == email


def test_unknown_email_and_wrong_password_answer_alike(client, register):
    email = _email()
    register(client, email=email)
    wrong = client.post(LOGIN, json={"email": email, "password": "not-the-password-1"})
    unknown = client.post(LOGIN, json={"email": _email(), "password": "not-the-password-1"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json() == unknown.get_json()
    assert wrong.get_json()["code"] == "invalid_credentials"
    assert wrong.mimetype == unknown.mimetype == "application/problem+json"
    assert wrong.headers["Cache-Control"] == unknown.headers["Cache-Control"] == "no-store"


def test_unknown_email_is_checked_against_a_hash_of_the_same_cost(app):
    from argon2 import extract_parameters

    from irisvue.auth.passwords import get_passwords

    with app.app_context():
        passwords = get_passwords()
        dummy = extract_parameters(passwords.dummy_hash)
        real = extract_parameters(passwords.hash("whatever-password-9"))
    assert dummy == real


def test_account_without_password_cannot_log_in(client, make_user):
    user = make_user()  # e.g. an identity-provider account: no password hash
    response = client.post(LOGIN, json={"email": user.email, "password": "anything-at-all-1"})
    assert response.status_code == 401
    assert response.get_json()["code"] == "invalid_credentials"


def test_disabled_account_is_403_only_with_the_right_password(app, client, register):
    email = _email()
    register(client, email=email)
    with app.app_context():
        db.session.execute(update(User).where(User.email == email).values(is_active=False))
        db.session.commit()
    right = client.post(LOGIN, json={"email": email, "password": PASSWORD})
    assert right.status_code == 403
    assert right.get_json()["code"] == "account_disabled"
    wrong = client.post(LOGIN, json={"email": email, "password": "not-the-password-1"})
    assert wrong.status_code == 401


def test_unknown_fields_and_missing_fields_are_422(client):
    extra = client.post(LOGIN, json={"email": _email(), "password": PASSWORD, "remember": True})
    assert extra.status_code == 422
    assert "remember" in extra.get_json()["errors"]
    missing = client.post(LOGIN, json={"email": _email()})
    assert missing.status_code == 422
    assert "password" in missing.get_json()["errors"]
    not_json = client.post(LOGIN, data="email=x", content_type="application/x-www-form-urlencoded")
    assert not_json.status_code == 415


def test_login_events_are_audited_without_secrets(app, client, register):
    email = _email()
    registered = register(client, email=email)
    client.post(LOGIN, json={"email": email, "password": "not-the-password-1"})
    client.post(LOGIN, json={"email": _email(), "password": "not-the-password-2"})
    client.post(LOGIN, json={"email": email, "password": PASSWORD})
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.created_at)).all()
        user_id = uuid.UUID(registered["user"]["id"])
        assert [(e.event, e.user_id) for e in events] == [
            ("registered", user_id),
            ("login_failed", user_id),
            ("login_failed", None),
            ("login_succeeded", user_id),
        ]
        for event in events:
            assert event.ip_hash and len(event.ip_hash) == 32
            assert "127.0.0.1" not in event.ip_hash
            dumped = repr((event.details, event.ip_hash))
            assert "not-the-password" not in dumped and PASSWORD not in dumped
            assert email not in dumped
