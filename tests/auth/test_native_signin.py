"""Native sign-in: POST /nonce and POST /id-token against a local Apple and Google."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta

import jwt
import pytest
from sqlalchemy import func, select, update

from irisvue.extensions import db
from irisvue.models import AuthNonce, Session, User, UserIdentity
from irisvue.models.base import utcnow
from tests.support.idp import (
    APPLE_WEB_CLIENT_ID,
    GOOGLE_IOS_CLIENT_ID,
    ID_TOKEN,
    NONCE,
    SigningKey,
    new_nonce,
    sha256_hex,
    sign_in_with,
)
from tests.support.users import bearer


def _rows(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def _post(client, provider, token, nonce, **extra):
    return client.post(
        ID_TOKEN, json={"provider": provider, "id_token": token, "nonce": nonce, **extra}
    )


def _assert_problem(response, status: int, code: str) -> None:
    assert response.status_code == status, response.get_json()
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == code


def test_nonce_is_random_single_use_and_stored_hashed(app, client):
    response = client.post(NONCE)
    assert response.status_code == 201
    body = response.get_json()
    assert body["expires_in"] == 600
    assert len(base64.urlsafe_b64decode(body["nonce"] + "==")) >= 16
    assert response.headers["Cache-Control"] == "no-store"
    with app.app_context():
        stored = db.session.scalars(select(AuthNonce.nonce_hash)).all()
    assert stored == [sha256_hex(body["nonce"])]  # never the raw nonce
    assert client.post(NONCE).get_json()["nonce"] != body["nonce"]


@pytest.mark.parametrize("provider", ["apple", "google"])
def test_first_sign_in_creates_a_verified_account_then_signs_it_in(app, client, idp, provider):
    sub = f"{provider}-user-1"
    first = sign_in_with(client, idp, provider, sub)
    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert body["created"] is True
    assert body["token_type"] == "bearer"
    assert body["user"]["email"] == f"{sub}@example.com"
    assert body["user"]["is_verified"] is True
    assert body["user"]["auth_provider"] == provider
    me = client.get("/api/v1/auth/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200

    again = sign_in_with(client, idp, provider, sub)
    assert again.status_code == 200
    assert again.get_json()["created"] is False
    assert again.get_json()["user"]["id"] == body["user"]["id"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 1
        identity = db.session.scalars(select(UserIdentity)).one()
        assert (identity.provider, identity.subject) == (provider, sub)
        # The session remembers which identity started it.
        started = db.session.scalars(select(Session.identity_id)).all()
        assert started == [identity.id, identity.id]
    refreshed = client.post("/api/v1/auth/refresh", headers=bearer(body["refresh_token"]))
    assert refreshed.status_code == 200


def test_every_configured_client_id_is_an_accepted_audience(client, idp):
    assert sign_in_with(client, idp, "apple", "a1", aud=APPLE_WEB_CLIENT_ID).status_code == 200
    assert sign_in_with(client, idp, "google", "g1", aud=GOOGLE_IOS_CLIENT_ID).status_code == 200


def test_google_ec_key_verifies(client, idp):
    key = idp.keys["google"][1]
    assert key.algorithm == "ES256"
    assert sign_in_with(client, idp, "google", "g-ec", key=key).status_code == 200


def test_apple_private_relay_address_is_the_account_email(client, idp):
    relay = "x7q2k9@privaterelay.appleid.com"
    response = sign_in_with(client, idp, "apple", "relay-1", email=relay, is_private_email="true")
    assert response.status_code == 200
    assert response.get_json()["user"]["email"] == relay
    headers = bearer(response.get_json()["access_token"])
    items = client.get("/api/v1/auth/identities", headers=headers).get_json()["items"]
    assert items[0]["email"] == relay and items[0]["is_private_email"] is True


def test_google_unverified_email_makes_an_unverified_account(client, idp, app):
    response = sign_in_with(client, idp, "google", "g-unverified", email_verified=False)
    assert response.status_code == 200
    assert response.get_json()["user"]["is_verified"] is False


def test_google_unverified_email_never_joins_an_existing_account(client, idp, app, register):
    register(client, "owner@example.com")
    response = sign_in_with(
        client, idp, "google", "g-attacker", email="owner@example.com", email_verified=False
    )
    _assert_problem(response, 409, "email_taken")
    assert _rows(app, UserIdentity) == 0


def _bad_token_cases(idp, nonce):
    now = time.time()
    other = SigningKey.generate("RS256", "apple-rsa-1")  # same kid, another key
    valid = idp.id_token("apple", "victim", nonce=nonce)
    header, payload, signature = valid.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "attacker"
    tampered_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    public_pem = idp.keys["apple"][0].public_pem()
    return {
        "wrong_aud": idp.id_token("apple", "u", nonce=nonce, aud="com.someone.else"),
        "wrong_iss": idp.id_token("apple", "u", nonce=nonce, iss="https://evil.example.com"),
        "google_iss_for_apple": idp.id_token(
            "apple", "u", nonce=nonce, iss="https://accounts.google.com"
        ),
        "expired": idp.id_token("apple", "u", nonce=nonce, iat=now - 900, exp=now - 120),
        "future_iat": idp.id_token("apple", "u", nonce=nonce, iat=now + 600, exp=now + 1200),
        "unknown_kid": idp.id_token(
            "apple", "u", nonce=nonce, key=SigningKey.generate("RS256", "nobody-knows")
        ),
        "wrong_key_same_kid": idp.id_token("apple", "u", nonce=nonce, key=other),
        "tampered": f"{header}.{tampered_payload.decode()}.{signature}",
        "alg_none": jwt.encode(
            {**claims, "sub": "u"}, None, algorithm="none", headers={"kid": "apple-rsa-1"}
        )
        + "sig",
        "hs256_with_public_key": _hs256(claims, public_pem),
        "no_nonce": idp.id_token("apple", "u"),
        "other_nonce": idp.id_token("apple", "u", nonce="someone-elses-nonce-123"),
        "raw_nonce_in_claim": idp.id_token("apple", "u", nonce_claim=nonce),
        "google_token": idp.id_token("google", "u", nonce=nonce),
    }


def _hs256(claims, secret: bytes) -> str:
    header = {"alg": "HS256", "typ": "JWT", "kid": "apple-rsa-1"}
    import hashlib
    import hmac

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    signing_input = b64(json.dumps(header).encode()) + b"." + b64(json.dumps(claims).encode())
    signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + b64(signature)).decode()


@pytest.mark.parametrize(
    "case",
    [
        "wrong_aud",
        "wrong_iss",
        "google_iss_for_apple",
        "expired",
        "future_iat",
        "unknown_kid",
        "wrong_key_same_kid",
        "tampered",
        "alg_none",
        "hs256_with_public_key",
        "no_nonce",
        "other_nonce",
        "raw_nonce_in_claim",
        "google_token",
    ],
)
def test_a_bad_token_is_401_and_writes_nothing(app, client, idp, case):
    nonce = new_nonce(client)
    token = _bad_token_cases(idp, nonce)[case]
    response = _post(client, "apple", token, nonce)
    _assert_problem(response, 401, "invalid_id_token")
    assert _rows(app, User) == 0 and _rows(app, UserIdentity) == 0 and _rows(app, Session) == 0
    with app.app_context():  # the nonce was not spent by a refused token
        assert db.session.scalar(select(AuthNonce.used_at)) is None


def test_a_replayed_token_and_nonce_are_refused(client, idp):
    nonce = new_nonce(client)
    token = idp.id_token("google", "g-replay", nonce=nonce)
    assert _post(client, "google", token, nonce).status_code == 200
    _assert_problem(_post(client, "google", token, nonce), 401, "invalid_id_token")


def test_a_nonce_we_never_issued_is_refused(client, idp):
    nonce = "A" * 43
    token = idp.id_token("google", "g-forged", nonce=nonce)
    _assert_problem(_post(client, "google", token, nonce), 401, "invalid_id_token")


def test_an_expired_nonce_is_refused(app, client, idp):
    nonce = new_nonce(client)
    with app.app_context():
        db.session.execute(update(AuthNonce).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    token = idp.id_token("google", "g-late", nonce=nonce)
    _assert_problem(_post(client, "google", token, nonce), 401, "invalid_id_token")
    assert _rows(app, User) == 0


def test_a_disabled_provider_is_404(app, client, idp):
    app.config["GOOGLE_CLIENT_IDS"] = ()
    nonce = new_nonce(client)
    token = idp.id_token("google", "g", nonce=nonce)
    _assert_problem(_post(client, "google", token, nonce), 404, "provider_disabled")


def test_providers_are_disabled_by_default(client):
    nonce = new_nonce(client)
    response = _post(client, "apple", "a.b.c", nonce)
    _assert_problem(response, 404, "provider_disabled")


@pytest.mark.parametrize(
    "body",
    [
        {"provider": "facebook", "id_token": "a.b.c", "nonce": "n" * 43},
        {"provider": "apple", "nonce": "n" * 43},
        {"provider": "apple", "id_token": "a.b.c"},
        {"id_token": "a.b.c", "nonce": "n" * 43},
        {"provider": "apple", "id_token": "not-a-jwt", "nonce": "n" * 43},
        {"provider": "apple", "id_token": "a." + "b" * 4095 + ".c", "nonce": "n" * 43},
        {"provider": "apple", "id_token": "a.b.c", "nonce": "short"},
        {"provider": "apple", "id_token": "a.b.c", "nonce": "n" * 43, "is_verified": True},
        {"provider": "apple", "id_token": 12, "nonce": "n" * 43},
    ],
)
def test_bad_input_is_422_and_writes_nothing(app, client, idp, body):
    response = client.post(ID_TOKEN, json=body)
    _assert_problem(response, 422, "validation_error")
    assert _rows(app, User) == 0 and _rows(app, AuthNonce) == 0


@pytest.mark.parametrize("token", ["a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30.", "e30.e30.e30"])
def test_malformed_tokens_are_401(app, client, idp, token):
    nonce = new_nonce(client)
    _assert_problem(_post(client, "apple", token, nonce), 401, "invalid_id_token")
    assert _rows(app, User) == 0


def test_sign_in_is_rate_limited_per_ip(app, client, idp):
    app.config["RATELIMIT_LOGIN_PER_IP"] = "2 per minute"
    nonce = new_nonce(client)
    statuses = [_post(client, "apple", "a.b.c", nonce).status_code for _ in range(3)]
    assert statuses == [401, 401, 429]


def test_a_disabled_account_cannot_sign_in(app, client, idp):
    assert sign_in_with(client, idp, "apple", "a-disabled").status_code == 200
    with app.app_context():
        db.session.execute(update(User).values(is_active=False))
        db.session.commit()
    _assert_problem(sign_in_with(client, idp, "apple", "a-disabled"), 403, "account_disabled")


def test_two_concurrent_uses_of_one_nonce_sign_in_once(app, idp):
    import threading

    client = app.test_client()
    nonce = new_nonce(client)
    token = idp.id_token("google", "g-race", nonce=nonce)
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def attempt() -> None:
        own = app.test_client()
        barrier.wait()
        statuses.append(_post(own, "google", token, nonce).status_code)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 401, 401, 401]
    assert _rows(app, Session) == 1
