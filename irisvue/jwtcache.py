"""flask-jwt-extended's JWTManager with a verified-claims cache per process.

Every protected request decodes its bearer token: flask-jwt-extended parses it
twice (unverified, then verified with the HMAC) and PyJWT validates the
base64 alphabet character by character, about 1 ms of CPU per request, for a
token the same process verified a moment ago. Here the result of a successful
verification is kept, keyed by the exact token string and the decode key, in
a bounded LRU: the signature (and `nbf`, the audience, the issuer, the
required claims) are checked once per token per process; `exp` is checked on
every request against the clock, with the configured leeway, exactly as PyJWT
does. A token that failed verification is never cached. Revocation is not
affected: the blocklist loader still asks the database on every request.

flask-jwt-extended has no public hook to skip verification (a custom
`decode_key_loader` only chooses the key), so this overrides the private
`JWTManager._decode_jwt_from_config`, through which `decode_token` and
`jwt_required` decode; tests/test_dependency_fences.py pins its signature and
that `jwt_required` reaches it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from flask_jwt_extended import JWTManager
from flask_jwt_extended.config import config
from jwt import ExpiredSignatureError

# Entries are a few hundred bytes: 4096 tokens ≈ 2 MiB per worker at most.
CLAIMS_CACHE_SIZE = 4096


class ClaimsCache:
    """A thread-safe bounded LRU of verified claims."""

    def __init__(self, size: int = CLAIMS_CACHE_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[Any, str], dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0  # what /metrics-style checks and the tests read

    def get(self, key: tuple[Any, str]) -> dict[str, Any] | None:
        with self._lock:
            claims = self._entries.get(key)
            if claims is None:
                self.misses += 1
            else:
                self.hits += 1
                self._entries.move_to_end(key)
            return claims

    def put(self, key: tuple[Any, str], claims: dict[str, Any]) -> None:
        with self._lock:
            self._entries[key] = claims
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)


class CachingJWTManager(JWTManager):
    """JWTManager whose decode verifies a token's signature once per process."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.claims_cache = ClaimsCache()

    def _decode_jwt_from_config(
        self, encoded_token: str, csrf_value: Any = None, allow_expired: bool = False
    ) -> dict:
        if csrf_value is not None:  # cookies with double-submit CSRF: not used, not cached
            return super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)
        # The key is part of the cache key: apps with different secrets never share claims.
        key = (config.decode_key, encoded_token)
        claims = self.claims_cache.get(key)
        if claims is None:
            # Verified with exp enforced (unless the caller allows expired tokens): an
            # expired token raises here exactly as without the cache, and is not kept.
            claims = super()._decode_jwt_from_config(encoded_token, None, allow_expired)
            self.claims_cache.put(key, claims)
        elif not allow_expired:
            _check_exp(claims, encoded_token)
        return dict(claims)


def _check_exp(claims: dict[str, Any], encoded_token: str) -> None:
    """PyJWT's `exp` rule (expired when exp <= now - leeway), on cached claims."""
    exp = claims.get("exp")
    if exp is None:
        return
    leeway = config.leeway
    seconds = leeway.total_seconds() if hasattr(leeway, "total_seconds") else leeway
    if int(exp) <= time.time() - seconds:
        import jwt

        error = ExpiredSignatureError("Signature has expired")
        # As JWTManager._decode_jwt_from_config: the expired-token handler reads these.
        error.jwt_header = jwt.get_unverified_header(encoded_token)  # type: ignore[attr-defined]
        error.jwt_data = dict(claims)  # type: ignore[attr-defined]
        raise error
