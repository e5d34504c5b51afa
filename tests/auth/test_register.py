from __future__ import annotations

import uuid

from sqlalchemy import select

from irisvue.extensions import db
from irisvue.models import AuditEvent, Job, User
from tests.support.users import PASSWORD, bearer

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"


def _email() -> str:
    return f"new-{uuid.uuid4().hex[:8]}@example.com"


def test_register_returns_account_and_tokens(app, client):
    response = client.post(
        REGISTER, json={"email": "  Ada.Lovelace@Example.COM ", "password": PASSWORD}
    )
    assert response.status_code == 201, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert set(body) == {"user", "access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 30 * 60
    assert body["user"]["email"] == "ada.lovelace@example.com"
    assert body["user"]["is_verified"] is False
    assert body["user"]["auth_provider"] == "password"
    assert PASSWORD not in response.get_data(as_text=True)
    assert "hashed" not in response.get_data(as_text=True)

    me = client.get("/api/v1/auth/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.get_json() == body["user"]
    assert me.headers["Cache-Control"] == "no-store"

    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "ada.lovelace@example.com"))
        assert user.hashed_password.startswith("$argon2id$")
        jobs = db.session.scalars(select(Job)).all()
        assert [(j.kind, j.user_id, j.args) for j in jobs] == [("email.verify_email", user.id, {})]
        events = db.session.scalars(select(AuditEvent.event)).all()
        assert events == ["registered"]


def test_duplicate_email_is_409_case_insensitively(client, register):
    email = _email()
    register(client, email=email)
    response = client.post(REGISTER, json={"email": email.upper(), "password": PASSWORD})
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "email_taken"


def test_invalid_email_is_422(client):
    for bad in ("not-an-email", "a@b", "", "x" * 300 + "@example.com", 42):
        response = client.post(REGISTER, json={"email": bad, "password": PASSWORD})
        assert response.status_code == 422, bad
        body = response.get_json()
        assert body["code"] == "validation_error"
        assert "email" in body["errors"]


def test_password_length_bounds(client):
    short = client.post(REGISTER, json={"email": _email(), "password": "x7#kq2!"})
    assert short.status_code == 422
    assert "password" in short.get_json()["errors"]
    too_long = client.post(REGISTER, json={"email": _email(), "password": "k" * 129})
    assert too_long.status_code == 422
    longest = client.post(REGISTER, json={"email": _email(), "password": "k9" * 64})
    assert longest.status_code == 201
    shortest = client.post(REGISTER, json={"email": _email(), "password": "q7#kx2!m"})
    assert shortest.status_code == 201


def test_common_password_is_refused(app, client):
    for common in ("baseball", "Password1", "FOOTBALL", "iloveyou", "qwertyuiop"):
        response = client.post(REGISTER, json={"email": _email(), "password": common})
        assert response.status_code == 422, common
        body = response.get_json()
        assert body["code"] == "password_too_common"
        assert "password" in body["errors"]
    with app.app_context():
        assert db.session.scalar(select(User.id)) is None


def test_common_password_list_is_large_enough():
    from irisvue.auth.passwords import common_passwords

    listed = common_passwords()
    assert len(listed) >= 10_000
    assert {"password", "12345678", "football"} <= listed


def test_mass_assignment_is_refused(app, client):
    for field, value in (
        ("is_verified", True),
        ("is_active", True),
        ("id", str(uuid.uuid4())),
        ("auth_provider", "google"),
        ("hashed_password", "$argon2id$x"),
    ):
        response = client.post(
            REGISTER, json={"email": _email(), "password": PASSWORD, field: value}
        )
        assert response.status_code == 422, field
        assert field in response.get_json()["errors"]
    with app.app_context():
        assert db.session.scalar(select(User.id)) is None


def test_unicode_password_round_trip(client):
    email = _email()
    password = "pässwörd-Ünïcødé-🔑-ñ"  # NFC
    assert client.post(REGISTER, json={"email": email, "password": password}).status_code == 201
    assert client.post(LOGIN, json={"email": email, "password": password}).status_code == 200
    # Byte-exact: the NFD spelling of the same text is a different password.
    import unicodedata

    decomposed = unicodedata.normalize("NFD", password)
    assert decomposed != password
    response = client.post(LOGIN, json={"email": email, "password": decomposed})
    assert response.status_code == 401
    # Nor is anything trimmed.
    assert client.post(LOGIN, json={"email": email, "password": f" {password}"}).status_code == 401


def test_lone_surrogate_password_is_422_not_500(client):
    raw = '{"email": "' + _email() + '", "password": "abcdefgh\\ud800"}'
    response = client.post(REGISTER, data=raw, content_type="application/json")
    assert response.status_code == 422
    assert "password" in response.get_json()["errors"]
    response = client.post(LOGIN, data=raw, content_type="application/json")
    assert response.status_code == 422


def test_default_argon2_profile(app, client, register, argon2_default_profile):
    email = _email()
    register(client, email=email)
    with app.app_context():
        hashed = db.session.scalar(select(User.hashed_password).where(User.email == email))
    # argon2-cffi's default: RFC 9106 low-memory profile (64 MiB, 3 passes, 4 lanes).
    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert client.post(LOGIN, json={"email": email, "password": PASSWORD}).status_code == 200


def test_login_rehashes_when_parameters_change(app, client, register, monkeypatch):
    from irisvue import create_app

    email = _email()
    register(client, email=email)
    with app.app_context():
        before = db.session.scalar(select(User.hashed_password).where(User.email == email))
    assert "t=1" in before

    monkeypatch.setenv("ARGON2_TIME_COST", "2")
    stronger = create_app()
    response = stronger.test_client().post(LOGIN, json={"email": email, "password": PASSWORD})
    assert response.status_code == 200
    with stronger.app_context():
        after = db.session.scalar(select(User.hashed_password).where(User.email == email))
    assert after != before
    assert ",t=2," in after
    # And the new hash still verifies.
    again = stronger.test_client().post(LOGIN, json={"email": email, "password": PASSWORD})
    assert again.status_code == 200
