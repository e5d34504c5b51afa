"""The verified-claims cache (irisvue/jwtcache.py) changes no answer, only the cost.

Signature checked once per token per process, `exp` on every request, revocation
always asked of the database: each test sends a token the cache already holds
and expects exactly the answer an uncached decode gives.
"""

from __future__ import annotations

import time

import jwt as pyjwt
from flask_jwt_extended import decode_token

from irisvue.extensions import jwt as jwt_manager
from irisvue.jwtcache import ClaimsCache
from tests.support.users import bearer

ME = "/api/v1/auth/me"


def _code(response) -> str:
    return response.get_json()["code"]


def test_repeated_requests_verify_the_token_once(app, client, register):
    account = register(client)
    jwt_manager.claims_cache.clear()
    for _ in range(3):
        assert client.get(ME, headers=bearer(account["access_token"])).status_code == 200
    assert len(jwt_manager.claims_cache) == 1
    # One verification (the miss), then the cached claims twice.
    assert (jwt_manager.claims_cache.misses, jwt_manager.claims_cache.hits) == (1, 2)


def test_cached_token_past_its_exp_is_expired(app, client, register):
    account = register(client)
    claims = pyjwt.decode(account["access_token"], options={"verify_signature": False})
    claims["exp"] = int(time.time()) - 5
    expired = pyjwt.encode(claims, app.config["JWT_SECRET_KEY"], algorithm="HS256")
    jwt_manager.claims_cache.clear()
    with app.app_context():
        decode_token(expired, allow_expired=True)  # verified and cached, exp not enforced
    assert len(jwt_manager.claims_cache) == 1
    response = client.get(ME, headers=bearer(expired))
    assert response.status_code == 401
    assert _code(response) == "token_expired"
    assert jwt_manager.claims_cache.hits == 1  # refused from the cached claims


def test_bad_signature_is_refused_and_never_cached(app, client, register):
    account = register(client)
    claims = pyjwt.decode(account["access_token"], options={"verify_signature": False})
    forged = pyjwt.encode(claims, "another-secret-of-sufficient-length-1234", algorithm="HS256")
    jwt_manager.claims_cache.clear()
    for _ in range(2):
        response = client.get(ME, headers=bearer(forged))
        assert response.status_code == 401
        assert _code(response) == "token_invalid"
    assert len(jwt_manager.claims_cache) == 0


def test_revocation_is_checked_even_when_the_claims_are_cached(client, register):
    account = register(client)
    headers = bearer(account["access_token"])
    jwt_manager.claims_cache.clear()
    assert client.get(ME, headers=headers).status_code == 200  # now cached
    assert len(jwt_manager.claims_cache) == 1
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    hits = jwt_manager.claims_cache.hits
    response = client.get(ME, headers=headers)
    assert response.status_code == 401
    assert _code(response) == "token_revoked"
    assert jwt_manager.claims_cache.hits == hits + 1  # refused although the claims were cached


def test_cache_is_bounded_least_recently_used_first():
    cache = ClaimsCache(size=2)
    cache.put(("k", "a"), {"n": 1})
    cache.put(("k", "b"), {"n": 2})
    assert cache.get(("k", "a")) == {"n": 1}  # a is now the most recent
    cache.put(("k", "c"), {"n": 3})
    assert len(cache) == 2
    assert cache.get(("k", "b")) is None
    assert cache.get(("k", "a")) == {"n": 1}
