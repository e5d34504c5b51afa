"""Issue #12, findings 4-8: credentials hold under concurrency, limits key the
right thing, sessions end, credential changes leave no loose ends."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import jwt
import pytest
import requests
from sqlalchemy import func, select, update

from irisvue.extensions import db
from irisvue.models import AuditEvent, Session, User
from tests.support.users import PASSWORD, bearer, fresh_ip, token_from

LOGIN = "/api/v1/auth/login"
ME = "/api/v1/auth/me"
PASSWORD_CHANGE = "/api/v1/auth/password"
REFRESH = "/api/v1/auth/refresh"
ERASURE = "/api/v1/privacy/erasure"
RESET_REQUEST = "/api/v1/auth/password-reset/request"
RESET = "/api/v1/auth/password-reset"
VERIFY = "/api/v1/auth/verify-email"
WRONG = "wrong-password-x"


def _email() -> str:
    return f"hard-{uuid.uuid4().hex[:8]}@example.com"


def _limited(response) -> bool:
    body = response.get_json() if hasattr(response, "get_json") else response.json()
    return response.status_code == 429 and body["code"] == "rate_limited"


# Finding 4: the per-account budget holds under concurrency, across workers ----------


@pytest.mark.slow
def test_forty_simultaneous_wrong_logins_verify_at_most_ten_passwords(
    app, client, register, live_server, argon2_default_profile
):
    email = register(client)["user"]["email"]  # hashed with the real (slow) profile
    server = live_server(
        WEB_CONCURRENCY="2", GUNICORN_THREADS="8", RATELIMIT_LOGIN_PER_IP="1000 per minute"
    )

    def wrong_login(_: int) -> int:
        response = requests.post(
            f"{server.base}{LOGIN}", json={"email": email, "password": WRONG}, timeout=60
        )
        assert response.status_code in (401, 429), response.text
        return response.status_code

    with ThreadPoolExecutor(40) as pool:
        statuses = list(pool.map(wrong_login, range(40)))
    # Every non-429 answer to a wrong password is one Argon2 verification.
    assert statuses.count(401) <= 10, statuses
    assert statuses.count(429) >= 30
    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.email == email))
        failures = db.session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.user_id == user_id, AuditEvent.event == "login_failed")
        )
    assert failures <= 10
    # The right password is refused too now: the account is locked.
    response = requests.post(
        f"{server.base}{LOGIN}", json={"email": email, "password": PASSWORD}, timeout=60
    )
    assert response.status_code == 429


# Finding 5: PATCH /me and every password check count ------------------------------


def test_email_taken_answers_count_toward_a_per_user_limit(app, client, register):
    app.config["RATELIMIT_EMAIL_CHANGE_PER_USER"] = "3 per hour"
    me = register(client)
    taken = register(client)["user"]["email"]
    headers = bearer(me["access_token"])
    body = {"email": taken, "current_password": PASSWORD}
    for _ in range(3):
        assert client.patch(ME, json=body, headers=headers).status_code == 409
    assert _limited(client.patch(ME, json=body, headers=headers))


def test_correct_password_email_changes_are_limited_too(app, client, register):
    app.config["RATELIMIT_EMAIL_CHANGE_PER_USER"] = "3 per hour"
    me = register(client)
    headers = bearer(me["access_token"])
    for _ in range(3):
        body = {"email": _email(), "current_password": PASSWORD}
        assert client.patch(ME, json=body, headers=headers).status_code == 200
    body = {"email": _email(), "current_password": PASSWORD}
    assert _limited(client.patch(ME, json=body, headers=headers))


def test_every_password_check_draws_on_the_account_budget(app, client, signed_in):
    email = _email()
    _, headers = signed_in(email=email, password=PASSWORD)
    for _ in range(4):
        body = {"current_password": WRONG, "new_password": "another-long-passphrase-7"}
        assert client.post(PASSWORD_CHANGE, json=body, headers=headers).status_code == 403
    for _ in range(3):
        body = {"email": _email(), "current_password": WRONG}
        assert client.patch(ME, json=body, headers=headers).status_code == 403
    for _ in range(3):
        assert client.post(ERASURE, json={"password": WRONG}, headers=headers).status_code == 401
    # Ten failures on the account: even the right password is refused at login...
    login = client.post(
        LOGIN, json={"email": email, "password": PASSWORD}, environ_overrides=fresh_ip()
    )
    assert _limited(login)
    assert 0 < int(login.headers["Retry-After"]) <= 15 * 60
    # ... and by the other endpoints that check it.
    body = {"email": _email(), "current_password": PASSWORD}
    assert _limited(client.patch(ME, json=body, headers=headers))


def test_a_right_password_gives_its_slot_back(client, register):
    email = register(client)["user"]["email"]
    for _ in range(9):
        response = client.post(LOGIN, json={"email": email, "password": WRONG})
        assert response.status_code == 401
    for _ in range(5):
        response = client.post(LOGIN, json={"email": email, "password": PASSWORD})
        assert response.status_code == 200
    assert client.post(LOGIN, json={"email": email, "password": WRONG}).status_code == 401
    assert _limited(client.post(LOGIN, json={"email": email, "password": WRONG}))


# Finding 6: IPv6 per /64; the proxy setting ----------------------------------------


def _login_from(client, ip: str, headers: dict | None = None):
    return client.post(
        LOGIN,
        json={"email": _email(), "password": WRONG},
        environ_overrides={"REMOTE_ADDR": ip},
        headers=headers or {},
    )


def test_ipv6_clients_are_limited_per_64(app, client):
    app.config["RATELIMIT_LOGIN_PER_IP"] = "3 per minute"
    for host in ("1", "ffff:0:7", "dead:beef:1"):
        assert _login_from(client, f"2001:db8:aa:bb::{host}").status_code == 401
    # Another address of the same /64 is the same client.
    assert _limited(_login_from(client, "2001:db8:aa:bb:1234:5678:9abc:def0"))
    # The next /64 is someone else.
    assert _login_from(client, "2001:db8:aa:bc::1").status_code == 401


def test_ipv4_mapped_addresses_count_as_ipv4(app, client):
    app.config["RATELIMIT_LOGIN_PER_IP"] = "2 per minute"
    assert _login_from(client, "198.51.100.9").status_code == 401
    assert _login_from(client, "::ffff:198.51.100.9").status_code == 401
    assert _limited(_login_from(client, "198.51.100.9"))
    assert _login_from(client, "198.51.100.10").status_code == 401


def test_behind_one_proxy_trusted_proxies_1_separates_clients(app, monkeypatch):
    from irisvue import create_app

    monkeypatch.setenv("TRUSTED_PROXIES", "1")
    proxied = create_app()
    proxied.config["RATELIMIT_LOGIN_PER_IP"] = "2 per minute"
    proxy = "10.0.0.1"  # every request reaches gunicorn from the proxy
    behind = proxied.test_client()

    def via_proxy(forwarded: str):
        return _login_from(behind, proxy, {"X-Forwarded-For": forwarded})

    # Two clients (the proxy appends the address it saw): separate budgets.
    for _ in range(2):
        assert via_proxy("2001:db8:1:1::5").status_code == 401
        assert via_proxy("203.0.113.7").status_code == 401
    # A spoofed extra hop in front of the real one resets nothing.
    assert _limited(via_proxy("192.0.2.1, 203.0.113.7"))
    assert _limited(via_proxy("192.0.2.2, 2001:db8:1:1::99"))
    assert via_proxy("203.0.113.8").status_code == 401


def test_behind_a_proxy_trusted_proxies_0_makes_every_client_one(app, client):
    """Why README and compose.yaml say to set TRUSTED_PROXIES behind a proxy."""
    app.config["RATELIMIT_LOGIN_PER_IP"] = "2 per minute"
    proxy = "10.0.0.2"
    for n in range(2):
        response = _login_from(client, proxy, {"X-Forwarded-For": f"203.0.113.{n}"})
        assert response.status_code == 401
    assert _limited(_login_from(client, proxy, {"X-Forwarded-For": "203.0.113.50"}))


# Finding 7: sessions have an absolute lifetime ------------------------------------


def _age_session(app, refresh_token: str, days: int) -> None:
    sid = jwt.decode(refresh_token, options={"verify_signature": False})["sid"]
    with app.app_context():
        db.session.execute(
            update(Session)
            .where(Session.id == uuid.UUID(sid))
            .values(created_at=Session.created_at - timedelta(days=days))
        )
        db.session.commit()


def test_a_refresh_never_reaches_past_session_max_days(app, client, register):
    pair = register(client)
    _age_session(app, pair["refresh_token"], days=89)
    response = client.post(REFRESH, headers=bearer(pair["refresh_token"]))
    assert response.status_code == 200
    claims = jwt.decode(response.get_json()["refresh_token"], options={"verify_signature": False})
    # 90 days from sign-in (89 days ago): about one day left, not 30.
    assert claims["exp"] - claims["iat"] <= 24 * 3600 + 60


def test_a_session_older_than_session_max_days_cannot_refresh(app, client, register):
    pair = register(client)
    refreshed = client.post(REFRESH, headers=bearer(pair["refresh_token"])).get_json()
    _age_session(app, refreshed["refresh_token"], days=91)
    response = client.post(REFRESH, headers=bearer(refreshed["refresh_token"]))
    assert response.status_code == 401
    assert response.get_json()["code"] == "session_expired"
    # The session is over: its access token goes with it.
    assert client.get(ME, headers=bearer(refreshed["access_token"])).status_code == 401


def test_session_max_days_is_a_setting(app, client, register):
    app.config["SESSION_MAX_DAYS"] = 1
    pair = register(client)
    _age_session(app, pair["refresh_token"], days=2)
    response = client.post(REFRESH, headers=bearer(pair["refresh_token"]))
    assert response.get_json()["code"] == "session_expired"


# Finding 8: credential changes ----------------------------------------------------


def _subjects(mailbox, address: str) -> list[str]:
    return [message["Subject"] for message in mailbox.to(address)]


def test_a_password_change_voids_reset_links_and_notifies(client, register, mailbox, run_jobs):
    me = register(client)
    email = me["user"]["email"]
    assert client.post(RESET_REQUEST, json={"email": email}).status_code == 202
    run_jobs()
    reset_token = token_from(mailbox.to(email)[-1])
    body = {"current_password": PASSWORD, "new_password": "another-long-passphrase-7"}
    changed = client.post(PASSWORD_CHANGE, json=body, headers=bearer(me["access_token"]))
    assert changed.status_code == 204
    response = client.post(
        RESET, json={"token": reset_token, "new_password": "third-pass-phrase-9"}
    )
    assert response.status_code == 403
    assert response.get_json()["code"] == "email_token_invalid"
    run_jobs()
    assert any("password was changed" in subject for subject in _subjects(mailbox, email))


def test_an_email_change_notifies_the_old_and_the_new_address(
    app, client, register, mailbox, run_jobs
):
    me = register(client)
    old, new = me["user"]["email"], _email()
    run_jobs()
    body = {"email": new, "current_password": PASSWORD}
    assert client.patch(ME, json=body, headers=bearer(me["access_token"])).status_code == 200
    run_jobs()
    assert any("email address" in s and "changed" in s for s in _subjects(mailbox, old))
    new_subjects = _subjects(mailbox, new)
    assert any("now belongs" in s for s in new_subjects)
    assert len(new_subjects) == 2  # the notice and the verification
    with app.app_context():  # sent notices leave no address behind
        assert db.session.execute(select(func.count()).select_from(_notices())).scalar() == 0


def _notices():
    from irisvue.models import SecurityNotice

    return SecurityNotice


def test_a_token_only_works_for_the_address_it_was_sent_to(
    app, client, register, mailbox, run_jobs
):
    me = register(client)
    email = me["user"]["email"]
    run_jobs()
    token = token_from(mailbox.to(email)[-1])
    # The address changes after the job mailed the token (a change that raced it).
    other = _email()
    with app.app_context():
        db.session.execute(update(User).where(User.email == email).values(email=other))
        db.session.commit()
    response = client.post(VERIFY, json={"token": token})
    assert response.status_code == 403
    assert response.get_json()["code"] == "email_token_invalid"
    with app.app_context():
        assert db.session.scalar(select(User.is_verified).where(User.email == other)) is False


def test_a_reset_token_dies_with_a_change_of_address(app, client, register, mailbox, run_jobs):
    me = register(client)
    email = me["user"]["email"]
    assert client.post(RESET_REQUEST, json={"email": email}).status_code == 202
    run_jobs()
    token = token_from(mailbox.to(email)[-1])
    with app.app_context():
        db.session.execute(update(User).where(User.email == email).values(email=_email()))
        db.session.commit()
    response = client.post(RESET, json={"token": token, "new_password": "third-pass-phrase-9"})
    assert response.status_code == 403


@pytest.mark.slow
def test_the_account_budget_holds_per_process_when_redis_stops(own_redis, register):
    from irisvue import create_app

    app = create_app()
    client = app.test_client()
    email = register(client)["user"]["email"]
    own_redis.stop()
    statuses = [
        client.post(LOGIN, json={"email": email, "password": WRONG}).status_code for _ in range(11)
    ]
    assert statuses == [401] * 10 + [429]
    assert _limited(client.post(LOGIN, json={"email": email, "password": PASSWORD}))
