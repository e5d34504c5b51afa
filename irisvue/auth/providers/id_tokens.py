"""An ID token (or an Apple notification) checked against its provider's keys.

The checks, in order: size, a parseable header naming RS256 or ES256 (never
`none`, never HS256: the algorithm comes from our list, not from the token) and
a `kid`; a key of that `kid` and of the matching type in the provider's JWKS;
the signature; `iss` among the provider's issuers; `aud` among its client ids;
`exp` and `iat` (each within LEEWAY of our clock; `iat` never in the future).
The nonce is the caller's business (it needs the database).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.exceptions import PyJWTError

from irisvue.auth.providers import ProviderConfig, provider_unavailable
from irisvue.auth.providers.jwks import JwksUnavailableError, jwks_for

ALGORITHMS = {"RS256": "RSA", "ES256": "EC"}
LEEWAY = 60
# Real ID tokens are 1-2 KB. Small enough that a token one character over the cap,
# JSON-escaped at 12 bytes a character, still fits MAX_JSON_KB (64 KiB): a 422, not a 413.
MAX_TOKEN_LENGTH = 4096


class TokenRejectedError(Exception):
    """The token is not acceptable; `reason` is for logs, never for clients."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _truthy(value: Any) -> bool:
    """Apple sends booleans as strings ("true"); Google as JSON booleans."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def verify_signed(
    provider: ProviderConfig, token: str, *, require: tuple[str, ...] = ("exp", "iat", "sub")
) -> dict[str, Any]:
    """The verified claims of `token`; TokenRejectedError, or 503 when no keys can be had."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise TokenRejectedError("size")
    try:
        header = jwt.get_unverified_header(token)
    except PyJWTError:
        raise TokenRejectedError("malformed") from None
    algorithm, kid = header.get("alg"), header.get("kid")
    if algorithm not in ALGORITHMS:
        raise TokenRejectedError("algorithm")
    if not isinstance(kid, str) or not kid:
        raise TokenRejectedError("kid_missing")
    try:
        key = jwks_for(provider.jwks_url).key(kid)
    except JwksUnavailableError:
        raise provider_unavailable(provider.name) from None
    if key is None:
        raise TokenRejectedError("kid_unknown")
    if key.key_type != ALGORITHMS[algorithm]:
        raise TokenRejectedError("key_type")
    try:
        claims = jwt.decode(
            token,
            key.key,
            algorithms=[algorithm],
            audience=list(provider.client_ids),
            issuer=list(provider.issuers),
            leeway=LEEWAY,
            options={"require": ["iss", "aud", *require]},
        )
    except PyJWTError as exc:
        raise TokenRejectedError(type(exc).__name__) from None
    iat = claims.get("iat")
    if iat is not None and (not isinstance(iat, int | float) or iat > time.time() + LEEWAY):
        raise TokenRejectedError("iat_future")
    return claims


@dataclass(frozen=True)
class IdClaims:
    provider: str
    subject: str
    audience: str
    issued_at: int
    nonce: str | None
    email: str | None
    email_verified: bool
    is_private_email: bool


def verify_id_token(provider: ProviderConfig, token: str) -> IdClaims:
    """An ID token's identity; TokenRejectedError when anything is off."""
    claims = verify_signed(provider, token)
    subject = claims.get("sub")
    if not isinstance(subject, str) or not 0 < len(subject) <= 255:
        raise TokenRejectedError("sub")
    audience = claims["aud"]
    if isinstance(audience, list):
        audience = next(a for a in audience if a in provider.client_ids)
    email = claims.get("email")
    email = email.strip().lower() if isinstance(email, str) and email.strip() else None
    if email is not None and (len(email) > 320 or "@" not in email):
        email = None
    nonce = claims.get("nonce")
    return IdClaims(
        provider=provider.name,
        subject=subject,
        audience=str(audience),
        issued_at=int(claims["iat"]),
        nonce=nonce if isinstance(nonce, str) else None,
        email=email,
        # Apple verifies every address it hands out (relay ones included).
        email_verified=email is not None
        and (provider.name == "apple" or _truthy(claims.get("email_verified"))),
        is_private_email=_truthy(claims.get("is_private_email")),
    )
