"""Every token problem is a 401 problem+json with a specific code."""

from __future__ import annotations

import base64
import json
import time

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import delete, update

from irisvue.extensions import db
from irisvue.models import User
from tests.support.users import bearer

ME = "/api/v1/auth/me"
REFRESH = "/api/v1/auth/refresh"


def _b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(token: str) -> dict:
    return pyjwt.decode(token, options={"verify_signature": False})


def _problem(response, code: str) -> None:
    assert response.status_code == 401, response.get_json()
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["code"] == code, body
    assert body["status"] == 401


@pytest.fixture
def account(client, register) -> dict:
    return register(client)


def test_valid_access_token_works(client, account):
    assert client.get(ME, headers=bearer(account["access_token"])).status_code == 200


def test_missing_and_malformed_headers(client):
    _problem(client.get(ME), "token_missing")
    _problem(client.get(ME, headers={"Authorization": "Bearer not.a.jwt"}), "token_invalid")
    _problem(client.get(ME, headers={"Authorization": "Bearer abc"}), "token_invalid")
    # Another scheme carries no bearer token at all.
    _problem(client.get(ME, headers={"Authorization": "Token abc.def.ghi"}), "token_missing")


def test_alg_none_is_refused(client, account):
    claims = _claims(account["access_token"])
    for alg in ("none", "None", "NONE"):
        forged = f"{_b64({'alg': alg, 'typ': 'JWT'})}.{_b64(claims)}."
        _problem(client.get(ME, headers=bearer(forged)), "token_invalid")


def test_rs256_and_other_algorithms_are_refused(app, client, account):
    claims = _claims(account["access_token"])
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rs_token = pyjwt.encode(claims, key, algorithm="RS256")
    _problem(client.get(ME, headers=bearer(rs_token)), "token_invalid")
    # The classic confusion: an "RS256" header over an HMAC keyed with the public key.
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{_b64({'alg': 'RS256', 'typ': 'JWT'})}.{_b64(claims)}".encode()
    import hashlib
    import hmac

    signature = hmac.new(public_pem, signing_input, hashlib.sha256).digest()
    confused = f"{signing_input.decode()}.{_b64(signature)}"
    _problem(client.get(ME, headers=bearer(confused)), "token_invalid")
    # Even our own secret under another HMAC algorithm: the algorithm is pinned.
    hs512 = pyjwt.encode(claims, app.config["JWT_SECRET_KEY"], algorithm="HS512")
    _problem(client.get(ME, headers=bearer(hs512)), "token_invalid")


def test_tampered_payload_is_refused(client, account, register):
    other = register(client)
    header, _, signature = account["access_token"].split(".")
    claims = _claims(account["access_token"])
    claims["sub"] = other["user"]["id"]
    tampered = f"{header}.{_b64(claims)}.{signature}"
    _problem(client.get(ME, headers=bearer(tampered)), "token_invalid")
    # A flipped signature byte, too.
    flipped = account["access_token"][:-2] + ("A" if account["access_token"][-2] != "A" else "B")
    flipped += account["access_token"][-1]
    _problem(client.get(ME, headers=bearer(flipped)), "token_invalid")


def test_expired_tokens_are_refused(app, client, account):
    now = int(time.time())
    for token in (account["access_token"], account["refresh_token"]):
        claims = _claims(token) | {"iat": now - 7200, "nbf": now - 7200, "exp": now - 60}
        expired = pyjwt.encode(claims, app.config["JWT_SECRET_KEY"], algorithm="HS256")
        path = ME if claims["type"] == "access" else REFRESH
        method = client.get if path == ME else client.post
        _problem(method(path, headers=bearer(expired)), "token_expired")


def test_wrong_token_type_both_ways(client, account):
    _problem(client.get(ME, headers=bearer(account["refresh_token"])), "token_wrong_type")
    _problem(client.post(REFRESH, headers=bearer(account["access_token"])), "token_wrong_type")


def test_token_without_session_id_is_refused(app, client, account):
    claims = _claims(account["access_token"])
    del claims["sid"]
    sessionless = pyjwt.encode(claims, app.config["JWT_SECRET_KEY"], algorithm="HS256")
    _problem(client.get(ME, headers=bearer(sessionless)), "token_invalid")


def test_logout_revokes_access_and_refresh(client, account):
    response = client.post("/api/v1/auth/logout", headers=bearer(account["access_token"]))
    assert response.status_code == 204
    _problem(client.get(ME, headers=bearer(account["access_token"])), "token_revoked")
    _problem(client.post(REFRESH, headers=bearer(account["refresh_token"])), "token_revoked")


def test_revoked_even_when_redis_forgot(app, client, account):
    """The database decides: an empty Redis (restarted, flushed) revives nothing."""
    client.post("/api/v1/auth/logout", headers=bearer(account["access_token"]))
    app.extensions["irisvue.redis"].flushdb()
    _problem(client.get(ME, headers=bearer(account["access_token"])), "token_revoked")


def test_disabled_user_is_401(app, client, account):
    with app.app_context():
        db.session.execute(
            update(User).where(User.email == account["user"]["email"]).values(is_active=False)
        )
        db.session.commit()
    _problem(client.get(ME, headers=bearer(account["access_token"])), "account_disabled")


def test_deleted_user_is_401(app, client, account):
    with app.app_context():
        db.session.execute(delete(User).where(User.email == account["user"]["email"]))
        db.session.commit()
    _problem(client.get(ME, headers=bearer(account["access_token"])), "token_revoked")
    _problem(client.post(REFRESH, headers=bearer(account["refresh_token"])), "token_revoked")


def test_token_errors_are_not_cached(client):
    response = client.get(ME, headers={"Authorization": "Bearer x.y.z"})
    assert response.headers["Cache-Control"] == "no-store"


def test_redis_is_not_in_the_revocation_path(own_redis, register):
    """Revocation is decided by the database alone: with the app's Redis stopped, a
    session revoked before or during the outage stays refused and a live one keeps
    working (access and refresh), and Redis coming back empty revives nothing."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from irisvue import create_app
    from irisvue.clients import REDIS_EXTENSION

    app = create_app()
    redis = app.extensions[REDIS_EXTENSION]
    # The app's Redis is the one this test stops, not the suite's.
    assert redis.connection_pool.connection_kwargs["port"] == own_redis.port
    client = app.test_client()
    email = register(client)["user"]["email"]
    a, b, c = (
        client.post(
            "/api/v1/auth/login",
            json={"email": email, "password": "violet-lantern-harbour-42"},
        ).get_json()
        for _ in range(3)
    )
    assert client.post("/api/v1/auth/logout", headers=bearer(a["access_token"])).status_code == 204
    # Nothing about sessions is kept in Redis, under any key name: the database alone decides.
    sids = {_claims(p["access_token"])["sid"] for p in (a, b, c)}
    assert not [key for key in redis.scan_iter() if any(sid.encode() in key for sid in sids)]

    own_redis.stop()
    # Unreachable: a token check that needed Redis would fail (or fail open) from here.
    with pytest.raises(RedisConnectionError):
        redis.ping()
    _problem(client.get(ME, headers=bearer(a["access_token"])), "token_revoked")
    _problem(client.post(REFRESH, headers=bearer(a["refresh_token"])), "token_revoked")
    assert client.get(ME, headers=bearer(c["access_token"])).status_code == 200
    refreshed = client.post(REFRESH, headers=bearer(c["refresh_token"]))
    assert refreshed.status_code == 200, refreshed.get_json()
    c = refreshed.get_json()
    assert client.get(ME, headers=bearer(c["access_token"])).status_code == 200
    # Revoked while Redis is down: only the database knows.
    sid_b = _claims(b["access_token"])["sid"]
    deleted = client.delete(f"/api/v1/auth/sessions/{sid_b}", headers=bearer(c["access_token"]))
    assert deleted.status_code == 204
    _problem(client.get(ME, headers=bearer(b["access_token"])), "token_revoked")
    _problem(client.post(REFRESH, headers=bearer(b["refresh_token"])), "token_revoked")

    own_redis.start()  # back, and empty
    assert redis.ping()
    _problem(client.get(ME, headers=bearer(b["access_token"])), "token_revoked")
    _problem(client.get(ME, headers=bearer(a["access_token"])), "token_revoked")
    assert client.get(ME, headers=bearer(c["access_token"])).status_code == 200
