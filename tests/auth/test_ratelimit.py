"""Rate limits: 429 problem+json with Retry-After, keyed so they cannot be dodged."""

from __future__ import annotations

import uuid

from tests.support.users import PASSWORD

LOGIN = "/api/v1/auth/login"
REGISTER = "/api/v1/auth/register"
RESET_REQUEST = "/api/v1/auth/password-reset/request"


def _email() -> str:
    return f"rl-{uuid.uuid4().hex[:8]}@example.com"


def _assert_limited(response) -> None:
    assert response.status_code == 429, response.get_json()
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "rate_limited"
    retry_after = int(response.headers["Retry-After"])
    assert 0 < retry_after <= 3600
    assert response.headers["Cache-Control"] == "no-store"


def _login(client, email: str, password: str, ip: str = "127.0.0.1", **kwargs):
    return client.post(
        LOGIN,
        json={"email": email, "password": password},
        environ_overrides={"REMOTE_ADDR": ip},
        **kwargs,
    )


def test_ten_failures_lock_the_account_whatever_the_ip(client, register):
    email = register(client)["user"]["email"]
    bystander = register(client)["user"]["email"]
    for attempt in range(10):
        response = _login(client, email, "wrong-password-x", ip=f"198.51.100.{attempt}")
        assert response.status_code == 401
    locked = _login(client, email, PASSWORD, ip="198.51.100.200")
    _assert_limited(locked)
    assert 0 < int(locked.headers["Retry-After"]) <= 15 * 60
    # Unknown and other accounts have their own counters.
    assert _login(client, bystander, PASSWORD).status_code == 200


def test_unknown_accounts_are_limited_like_known_ones(client):
    email = _email()
    for _ in range(10):
        assert _login(client, email, "wrong-password-x").status_code == 401
    _assert_limited(_login(client, email, "wrong-password-x"))


def test_successful_logins_do_not_count_as_failures(client, register):
    email = register(client)["user"]["email"]
    for _ in range(12):
        assert _login(client, email, PASSWORD).status_code == 200


def test_login_per_ip_and_a_spoofed_forwarded_for(app, client):
    app.config["RATELIMIT_LOGIN_PER_IP"] = "3 per minute"
    for n in range(3):
        response = _login(
            client, _email(), "wrong-password-x", headers={"X-Forwarded-For": f"203.0.113.{n}"}
        )
        assert response.status_code == 401
    # No trusted proxy: the header is the client's word and changes nothing.
    spoofed = _login(
        client, _email(), "wrong-password-x", headers={"X-Forwarded-For": "192.0.2.99"}
    )
    _assert_limited(spoofed)
    assert _login(client, _email(), "x-password-y", ip="127.0.0.2").status_code == 401


def test_trusted_proxy_hop_is_the_only_one_honoured(app, monkeypatch):
    from irisvue import create_app

    monkeypatch.setenv("TRUSTED_PROXIES", "1")
    proxied = create_app()
    proxied.config["RATELIMIT_LOGIN_PER_IP"] = "3 per minute"
    client = proxied.test_client()

    def attempt(forwarded: str):
        # The proxy (REMOTE_ADDR 10.0.0.1) appends the address it saw.
        return _login(
            client,
            _email(),
            "wrong-password-x",
            ip="10.0.0.1",
            headers={"X-Forwarded-For": forwarded},
        )

    for n in range(3):
        assert attempt(f"192.0.2.{n}, 203.0.113.7").status_code == 401
    _assert_limited(attempt("192.0.2.77, 203.0.113.7"))  # a new fake left part resets nothing
    assert attempt("203.0.113.8").status_code == 401  # another real client has its own counter


def test_register_per_email_and_per_ip(app, client):
    email = _email()
    assert client.post(REGISTER, json={"email": email, "password": PASSWORD}).status_code == 201
    for n in range(2):
        response = client.post(
            REGISTER,
            json={"email": email.upper(), "password": PASSWORD},
            environ_overrides={"REMOTE_ADDR": f"198.51.100.{n}"},
        )
        assert response.status_code == 409
    _assert_limited(
        client.post(
            REGISTER,
            json={"email": email, "password": PASSWORD},
            environ_overrides={"REMOTE_ADDR": "198.51.100.50"},
        )
    )
    app.config["RATELIMIT_REGISTER_PER_IP"] = "2 per hour"
    ip = {"REMOTE_ADDR": "192.0.2.10"}
    for _ in range(2):
        payload = {"email": _email(), "password": PASSWORD}
        assert client.post(REGISTER, json=payload, environ_overrides=ip).status_code == 201
    payload = {"email": _email(), "password": PASSWORD}
    _assert_limited(client.post(REGISTER, json=payload, environ_overrides=ip))


def test_password_reset_request_per_email_and_per_ip(app, client):
    email = _email()
    for n in range(3):
        response = client.post(
            RESET_REQUEST, json={"email": email}, environ_overrides={"REMOTE_ADDR": f"192.0.2.{n}"}
        )
        assert response.status_code == 202
    _assert_limited(client.post(RESET_REQUEST, json={"email": f" {email.upper()}"}))
    app.config["RATELIMIT_PASSWORD_RESET_PER_IP"] = "2 per hour"
    ip = {"REMOTE_ADDR": "192.0.2.200"}
    for _ in range(2):
        assert (
            client.post(RESET_REQUEST, json={"email": _email()}, environ_overrides=ip).status_code
            == 202
        )
    _assert_limited(client.post(RESET_REQUEST, json={"email": _email()}, environ_overrides=ip))


def test_limits_hold_when_redis_stops(own_redis, register):
    """Redis down: flask-limiter falls back to per-process memory; it never fails open."""
    from irisvue import create_app

    app = create_app()
    app.config["RATELIMIT_LOGIN_PER_IP"] = "3 per minute"
    client = app.test_client()
    assert _login(client, _email(), "wrong-password-x").status_code == 401
    own_redis.stop()
    statuses = [_login(client, _email(), "wrong-password-x").status_code for _ in range(5)]
    assert 500 not in statuses
    assert statuses[:3] == [401, 401, 401]
    assert statuses[3:] == [429, 429]
    limited = _login(client, _email(), "wrong-password-x")
    _assert_limited(limited)


def test_rate_limits_can_be_switched_off(app, monkeypatch):
    from irisvue import create_app

    monkeypatch.setenv("RATELIMIT_ENABLED", "false")
    unlimited = create_app()
    client = unlimited.test_client()
    email = _email()
    for _ in range(12):
        assert _login(client, email, "wrong-password-x").status_code == 401
