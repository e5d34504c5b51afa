"""The providers' signing keys (JWKS), cached per process.

PyJWT's `PyJWKClient` was the first choice, but it drops its cached set when
a fetch fails, refetches on every unknown `kid` and ignores `Cache-Control`;
so this is a thin cache around PyJWT's own `PyJWKSet` parsing instead:

* fetched with a short timeout (PROVIDER_HTTP_TIMEOUT_SECONDS);
* kept for the response's `Cache-Control: max-age`, at least 5 min, at most a day;
* when a fetch fails the last good set stays in use (and the next attempt
  waits REFETCH_INTERVAL), so a provider outage does not stop sign-ins;
* a `kid` not in the set refetches at most once per REFETCH_INTERVAL (30 s):
  how a key rotation is picked up, without letting forged `kid`s hammer the
  provider;
* with no set ever fetched and the provider unreachable: `JwksUnavailableError`.
"""

from __future__ import annotations

import http.client
import json
import math
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import structlog
from flask import current_app
from jwt import PyJWK, PyJWKSet
from jwt.exceptions import PyJWTError

log = structlog.get_logger(__name__)

MIN_AGE = 300.0
MAX_AGE = 24 * 3600.0
REFETCH_INTERVAL = 30.0
MAX_BODY = 256 * 1024
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)", re.IGNORECASE)
_EXTENSION = "irisvue.jwks"
_registry_lock = threading.Lock()


class JwksUnavailableError(Exception):
    """No key set was ever fetched and the provider cannot be reached now."""


def cache_lifetime(cache_control: str | None) -> float:
    """Seconds to keep a set: its `max-age`, clamped to [5 min, 1 day]."""
    found = _MAX_AGE.search(cache_control or "")
    if found is None or "no-store" in (cache_control or "").lower():
        return MIN_AGE
    return min(max(float(found.group(1)), MIN_AGE), MAX_AGE)


def _parse(body: bytes) -> dict[str, PyJWK]:
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("not a JWK set")
    listed = data.get("keys")
    usable = [
        jwk
        for jwk in (listed if isinstance(listed, list) else [])
        if isinstance(jwk, dict)
        and isinstance(jwk.get("kid"), str)
        and jwk.get("use", "sig") == "sig"
    ]
    keys = {}
    for jwk in usable:
        try:
            parsed = PyJWKSet.from_dict({"keys": [jwk]}).keys[0]
        except (PyJWTError, ValueError, TypeError, KeyError):
            continue  # a key type PyJWT does not know: never used to verify
        keys[jwk["kid"]] = parsed
    if not keys:
        raise ValueError("no usable signing key")
    return keys


class JwksCache:
    """One provider's key set; thread-safe."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 3.0,
        refetch_interval: float = REFETCH_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.refetch_interval = refetch_interval
        self.clock = clock
        self.fetches = 0
        self._keys: dict[str, PyJWK] | None = None
        self._fresh_until = -math.inf
        self._last_kid_refetch = -math.inf
        self._lock = threading.Lock()

    def _fetch(self) -> tuple[dict[str, PyJWK], float]:
        self.fetches += 1
        request = urllib.request.Request(self.url, headers={"Accept": "application/json"})  # noqa: S310
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
            body = response.read(MAX_BODY + 1)
            if len(body) > MAX_BODY:
                raise ValueError("key set too large")
            return _parse(body), cache_lifetime(response.headers.get("Cache-Control"))

    def _refresh(self, now: float) -> None:
        try:
            keys, lifetime = self._fetch()
        except (OSError, ValueError, http.client.HTTPException, urllib.error.URLError) as exc:
            log.warning("jwks_fetch_failed", url=self.url, error=type(exc).__name__)
            if self._keys is None:
                raise JwksUnavailableError(self.url) from None
            # Keep the last good set; try again after a short pause, not on every request.
            self._fresh_until = now + self.refetch_interval
            return
        self._keys = keys
        self._fresh_until = now + lifetime

    def key(self, kid: str) -> PyJWK | None:
        """The signing key named `kid`, or None; JwksUnavailableError as described above."""
        with self._lock:
            now = self.clock()
            fetched = self._keys is None or now >= self._fresh_until
            if fetched:
                self._refresh(now)
            assert self._keys is not None
            found = self._keys.get(kid)
            # Not twice in one call: a set fetched just now does not know `kid` either.
            if (
                found is None
                and not fetched
                and now - self._last_kid_refetch >= self.refetch_interval
            ):
                self._last_kid_refetch = now
                self._refresh(now)
                found = self._keys.get(kid)
            return found


def jwks_for(url: str) -> JwksCache:
    """The current app's cache for `url` (one per app and URL, shared by its threads)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    with _registry_lock:
        caches = app.extensions.setdefault(_EXTENSION, {})
        cache = caches.get(url)
        if cache is None:
            cache = caches[url] = JwksCache(
                url, timeout=float(app.config["PROVIDER_HTTP_TIMEOUT_SECONDS"])
            )
        return cache
