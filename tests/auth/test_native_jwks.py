"""The JWKS cache: provider outages, key rotation, throttled refetches, Cache-Control."""

from __future__ import annotations

import pytest

from irisvue.auth.providers.jwks import JwksCache, JwksUnavailableError, cache_lifetime
from tests.support.idp import identity_provider, sign_in_with
from tests.support.users import PASSWORD


def test_last_good_keys_keep_verifying_when_the_provider_is_down(app, client, idp):
    assert sign_in_with(client, idp, "apple", "a-1").status_code == 200
    idp.jwks_down = True
    # Force the cached set to be stale: the refetch fails, the old set stays in use.
    cache = app.extensions["irisvue.jwks"][idp.settings()["APPLE_JWKS_URL"]]
    cache._fresh_until = 0
    before = idp.calls.jwks["apple"]
    assert sign_in_with(client, idp, "apple", "a-1").status_code == 200
    assert idp.calls.jwks["apple"] == before + 1
    # And the next request does not hammer the provider again.
    assert sign_in_with(client, idp, "apple", "a-2").status_code == 200
    assert idp.calls.jwks["apple"] == before + 1


def test_never_fetched_and_unreachable_is_a_503_problem(app, client, idp):
    idp.jwks_down = True
    response = sign_in_with(client, idp, "google", "g-1")
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "provider_unavailable"


def test_unreachable_host_is_a_503_not_a_500(app, client, idp):
    app.config["GOOGLE_JWKS_URL"] = "http://127.0.0.1:9/certs"  # discard port: refused
    response = sign_in_with(client, idp, "google", "g-1")
    assert response.status_code == 503


def test_a_provider_outage_never_breaks_password_login_or_refresh(app, client, idp, register):
    body = register(client, "pw@example.com")
    idp.jwks_down = True
    assert sign_in_with(client, idp, "google", "g-down").status_code == 503
    login = client.post(
        "/api/v1/auth/login", json={"email": "pw@example.com", "password": PASSWORD}
    )
    assert login.status_code == 200
    refresh = client.post(
        "/api/v1/auth/refresh", headers={"Authorization": f"Bearer {body['refresh_token']}"}
    )
    assert refresh.status_code == 200


def test_key_rotation_is_picked_up_and_unknown_kids_refetch_at_most_once(app, client, idp):
    assert sign_in_with(client, idp, "apple", "a-rot").status_code == 200
    assert idp.calls.jwks["apple"] == 1
    new_key = idp.rotate("apple")
    response = sign_in_with(client, idp, "apple", "a-rot", key=new_key)
    assert response.status_code == 200, response.get_json()
    assert idp.calls.jwks["apple"] == 2
    # A burst of tokens with kids nobody published: no further fetch within 30 s.
    from tests.support.idp import SigningKey

    for n in range(5):
        forged = SigningKey.generate("RS256", f"forged-{n}")
        assert sign_in_with(client, idp, "apple", "a-rot", key=forged).status_code == 401
    assert idp.calls.jwks["apple"] == 2


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_refetch_throttle_and_cache_lifetime_follow_the_clock():
    with identity_provider() as idp:
        clock = _Clock()
        idp.cache_control["google"] = "max-age=600"
        cache = JwksCache(f"{idp.base}/google/certs", timeout=2, clock=clock)
        assert cache.key("google-rsa-1") is not None
        assert cache.key("unknown") is None  # one refetch
        assert cache.key("unknown") is None  # throttled
        assert cache.fetches == 2
        clock.now += 31
        assert cache.key("unknown") is None
        assert cache.fetches == 3
        clock.now += 600  # max-age=600 elapsed since the last fetch
        assert cache.key("google-rsa-1") is not None
        assert cache.fetches == 4


def test_a_stale_set_and_an_unknown_kid_fetch_once():
    with identity_provider() as idp:
        clock = _Clock()
        idp.cache_control["google"] = "max-age=300"
        cache = JwksCache(f"{idp.base}/google/certs", timeout=2, clock=clock)
        assert cache.key("unknown") is None  # the first fetch: nothing to refetch
        assert cache.fetches == 1
        clock.now += 301  # stale, and long past the unknown-kid throttle
        assert cache.key("unknown") is None
        assert cache.fetches == 2  # one fetch for both reasons
        assert cache.key("unknown") is None
        assert cache.fetches == 3  # the next call may ask once (a rotation)
        assert cache.key("unknown") is None
        assert cache.fetches == 3  # then the throttle holds


def test_never_fetched_raises_unavailable():
    with identity_provider() as idp:
        idp.jwks_down = True
        cache = JwksCache(f"{idp.base}/apple/keys", timeout=2, clock=_Clock())
        with pytest.raises(JwksUnavailableError):
            cache.key("apple-rsa-1")


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, 300),
        ("max-age=60", 300),
        ("public, max-age=21600, must-revalidate", 21600),
        ("max-age=99999999", 86400),
        ("no-store", 300),
        ("private", 300),
    ],
)
def test_cache_lifetime_honours_max_age_within_bounds(header, seconds):
    assert cache_lifetime(header) == seconds


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'{"keys": 7}',
        b'{"keys": {"kid": "x"}}',
        b'{"keys": [{"kid": "apple-rsa-1", "kty": "RSA", "n": "!!", "e": "AQAB"}]}',
        b'{"keys": [{"kid": "apple-rsa-1", "kty": "OKP", "crv": "X448", "x": "AA"}]}',
        b'{"keys": [{"kid": "apple-rsa-1", "kty": "oct", "k": "c2VjcmV0"}]}',
    ],
)
def test_a_garbled_key_set_is_a_503_never_a_500(app, client, idp, body):
    idp.jwks_body = body
    response = sign_in_with(client, idp, "apple", "a-garbled")
    assert response.status_code in (401, 503), response.get_json()
    assert response.get_json()["code"] in ("provider_unavailable", "invalid_id_token")
