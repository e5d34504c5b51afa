"""Sessions (refresh-token families): rotation, reuse detection, revocation."""

from __future__ import annotations

import threading
import uuid

import jwt as pyjwt
import pytest
from sqlalchemy import select

from irisvue.extensions import db
from irisvue.models import AuditEvent, Session
from tests.support.users import PASSWORD, bearer

ME = "/api/v1/auth/me"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
SESSIONS = "/api/v1/auth/sessions"


def _code(response) -> str:
    return response.get_json()["code"]


def _login(client, email: str, password: str = PASSWORD, agent: str = "pytest") -> dict:
    response = client.post(
        LOGIN, json={"email": email, "password": password}, headers={"User-Agent": agent}
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.fixture
def no_grace(monkeypatch):
    monkeypatch.setenv("REFRESH_REUSE_GRACE_SECONDS", "0")


def test_refresh_rotates(client, register):
    first = register(client)
    response = client.post(REFRESH, headers=bearer(first["refresh_token"]))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    second = response.get_json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    claims = pyjwt.decode(second["access_token"], options={"verify_signature": False})
    assert (
        claims["sid"]
        == pyjwt.decode(first["access_token"], options={"verify_signature": False})["sid"]
    )
    assert client.get(ME, headers=bearer(second["access_token"])).status_code == 200
    third = client.post(REFRESH, headers=bearer(second["refresh_token"]))
    assert third.status_code == 200


def test_reuse_revokes_the_whole_family(no_grace, app, client, register):
    first = register(client)
    second = client.post(REFRESH, headers=bearer(first["refresh_token"])).get_json()
    # The spent token again (an attacker's copy, or the victim's): the family dies.
    reused = client.post(REFRESH, headers=bearer(first["refresh_token"]))
    assert reused.status_code == 401
    assert _code(reused) == "token_reused"
    # ... including the legitimate newer tokens.
    newer_refresh = client.post(REFRESH, headers=bearer(second["refresh_token"]))
    assert newer_refresh.status_code == 401
    assert _code(newer_refresh) == "token_revoked"
    newer_access = client.get(ME, headers=bearer(second["access_token"]))
    assert newer_access.status_code == 401
    assert _code(newer_access) == "token_revoked"
    with app.app_context():
        session = db.session.scalars(select(Session)).one()
        assert session.revoked_reason == "refresh_reused"
        assert "refresh_reused" in db.session.scalars(select(AuditEvent.event)).all()


def test_duplicate_refresh_within_grace_gets_the_same_pair(app, client, register):
    first = register(client)
    winner = client.post(REFRESH, headers=bearer(first["refresh_token"]))
    loser = client.post(REFRESH, headers=bearer(first["refresh_token"]))
    assert winner.status_code == loser.status_code == 200
    assert winner.get_json() == loser.get_json()
    pair = winner.get_json()
    assert client.get(ME, headers=bearer(pair["access_token"])).status_code == 200
    assert client.post(REFRESH, headers=bearer(pair["refresh_token"])).status_code == 200
    with app.app_context():
        session = db.session.scalars(select(Session)).one()
        assert session.revoked_at is None


def test_concurrent_refreshes_rotate_once(app, register):
    """Threads with their own clients and app contexts race on one refresh token."""
    account = register(app.test_client())
    rounds, racers = 3, 4
    token = account["refresh_token"]
    for _ in range(rounds):
        barrier = threading.Barrier(racers)
        results: list = [None] * racers

        def race(
            index: int,
            token: str = token,
            barrier: threading.Barrier = barrier,
            results: list = results,
        ) -> None:
            client = app.test_client()
            barrier.wait(timeout=10)
            response = client.post(REFRESH, headers=bearer(token))
            results[index] = (response.status_code, response.get_json())

        threads = [threading.Thread(target=race, args=(i,)) for i in range(racers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert all(r is not None and r[0] == 200 for r in results), results
        bodies = {r[1]["refresh_token"] for r in results}
        assert len(bodies) == 1, "every racer gets the one new pair"
        new_token = bodies.pop()
        with app.app_context():
            session = db.session.scalars(select(Session)).one()
            assert session.revoked_at is None
            assert (
                session.previous_refresh_jti
                == pyjwt.decode(token, options={"verify_signature": False})["jti"]
            )
            assert (
                session.refresh_jti
                == pyjwt.decode(new_token, options={"verify_signature": False})["jti"]
            )
        token = new_token


def test_sessions_list_and_delete(client, register):
    account = register(client)
    email = account["user"]["email"]
    phone = _login(client, email, agent="IrisVue/1.0 (iPhone)")
    laptop = _login(client, email, agent="IrisVue/1.0 (Mac)")

    listed = client.get(SESSIONS, headers=bearer(phone["access_token"]))
    assert listed.status_code == 200
    assert listed.headers["Cache-Control"] == "no-store"
    items = listed.get_json()["items"]
    assert len(items) == 3
    assert [i["current"] for i in items].count(True) == 1
    current = next(i for i in items if i["current"])
    assert current["user_agent"] == "IrisVue/1.0 (iPhone)"
    assert current["ip_address"] == "127.0.0.1"
    assert {"id", "created_at", "last_used_at", "expires_at"} <= set(current)

    laptop_id = next(i["id"] for i in items if i["user_agent"] == "IrisVue/1.0 (Mac)")
    deleted = client.delete(f"{SESSIONS}/{laptop_id}", headers=bearer(phone["access_token"]))
    assert deleted.status_code == 204
    assert _code(client.get(ME, headers=bearer(laptop["access_token"]))) == "token_revoked"
    assert _code(client.post(REFRESH, headers=bearer(laptop["refresh_token"]))) == "token_revoked"
    assert client.get(ME, headers=bearer(phone["access_token"])).status_code == 200
    remaining = client.get(SESSIONS, headers=bearer(phone["access_token"])).get_json()["items"]
    assert laptop_id not in {i["id"] for i in remaining}
    again = client.delete(f"{SESSIONS}/{laptop_id}", headers=bearer(phone["access_token"]))
    assert again.status_code == 404


def test_another_users_session_is_404(client, register):
    alice = register(client)
    bob = register(client)
    bob_session = client.get(SESSIONS, headers=bearer(bob["access_token"])).get_json()["items"][0]
    response = client.delete(
        f"{SESSIONS}/{bob_session['id']}", headers=bearer(alice["access_token"])
    )
    assert response.status_code == 404
    assert _code(response) == "session_not_found"
    assert client.get(ME, headers=bearer(bob["access_token"])).status_code == 200
    missing = client.delete(f"{SESSIONS}/{uuid.uuid4()}", headers=bearer(alice["access_token"]))
    assert missing.status_code == 404


def test_sessions_pagination(client, register):
    account = register(client)
    for _ in range(3):
        _login(client, account["user"]["email"])
    headers = bearer(account["access_token"])
    seen, cursor = [], None
    for _ in range(10):
        query = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        page = client.get(SESSIONS, headers=headers, query_string=query).get_json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 4
    bad = client.get(SESSIONS, headers=headers, query_string={"cursor": "%%%"})
    assert bad.status_code == 422
    assert _code(bad) == "invalid_cursor"
    too_many = client.get(SESSIONS, headers=headers, query_string={"limit": 1000})
    assert too_many.status_code == 422


def test_logout_all(app, client, register):
    account = register(client)
    other = _login(client, account["user"]["email"])
    response = client.post("/api/v1/auth/logout-all", headers=bearer(other["access_token"]))
    assert response.status_code == 204
    for pair in (account, other):
        assert _code(client.get(ME, headers=bearer(pair["access_token"]))) == "token_revoked"
        assert _code(client.post(REFRESH, headers=bearer(pair["refresh_token"]))) == "token_revoked"
    with app.app_context():
        assert "logout_all" in db.session.scalars(select(AuditEvent.event)).all()


def test_password_change_revokes_every_other_session(app, client, register):
    account = register(client)
    email = account["user"]["email"]
    other = _login(client, email)
    new_password = "amber-quokka-meridian-7"

    wrong = client.post(
        "/api/v1/auth/password",
        json={"current_password": "not-it-at-all-9", "new_password": new_password},
        headers=bearer(account["access_token"]),
    )
    assert wrong.status_code == 403
    assert _code(wrong) == "invalid_credentials"
    common = client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "password123"},
        headers=bearer(account["access_token"]),
    )
    assert common.status_code == 422
    assert _code(common) == "password_too_common"
    assert client.get(ME, headers=bearer(other["access_token"])).status_code == 200

    changed = client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": new_password},
        headers=bearer(account["access_token"]),
    )
    assert changed.status_code == 204
    # This session lives on; every other one is dead, access and refresh.
    assert client.get(ME, headers=bearer(account["access_token"])).status_code == 200
    assert client.post(REFRESH, headers=bearer(account["refresh_token"])).status_code == 200
    assert _code(client.get(ME, headers=bearer(other["access_token"]))) == "token_revoked"
    assert _code(client.post(REFRESH, headers=bearer(other["refresh_token"]))) == "token_revoked"
    assert client.post(LOGIN, json={"email": email, "password": PASSWORD}).status_code == 401
    assert client.post(LOGIN, json={"email": email, "password": new_password}).status_code == 200
    with app.app_context():
        assert "password_changed" in db.session.scalars(select(AuditEvent.event)).all()


def test_patch_me_changes_only_the_email(app, client, register):
    account = register(client)
    headers = bearer(account["access_token"])
    refused = client.patch(ME, json={"is_verified": True}, headers=headers)
    assert refused.status_code == 422
    for field in ("is_active", "id", "created_at", "auth_provider"):
        response = client.patch(
            ME,
            json={"email": "x@example.com", "current_password": PASSWORD, field: "x"},
            headers=headers,
        )
        assert response.status_code == 422, field
    wrong = client.patch(
        ME, json={"email": "new@example.com", "current_password": "nope-nope-nope"}, headers=headers
    )
    assert wrong.status_code == 403
    taken = register(client)["user"]["email"]
    conflict = client.patch(
        ME, json={"email": taken, "current_password": PASSWORD}, headers=headers
    )
    assert conflict.status_code == 409
    assert _code(conflict) == "email_taken"
    changed = client.patch(
        ME,
        json={"email": " New.Address@Example.com", "current_password": PASSWORD},
        headers=headers,
    )
    assert changed.status_code == 200
    assert changed.get_json()["email"] == "new.address@example.com"
    assert changed.get_json()["is_verified"] is False


def test_purging_spent_credentials_keeps_them_refused(app, client, register):
    from irisvue.auth.services import purge_spent_credentials

    account = register(client)
    other = _login(client, account["user"]["email"])
    client.post("/api/v1/auth/logout", headers=bearer(other["access_token"]))
    with app.app_context():
        counts = purge_spent_credentials()
        assert counts["sessions"] == 1
        assert len(db.session.scalars(select(Session)).all()) == 1
    assert _code(client.get(ME, headers=bearer(other["access_token"]))) == "token_revoked"
    assert _code(client.post(REFRESH, headers=bearer(other["refresh_token"]))) == "token_revoked"
    assert client.get(ME, headers=bearer(account["access_token"])).status_code == 200
