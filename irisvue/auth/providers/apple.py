"""Apple's token endpoints: the authorization-code exchange and token revocation.

Both authenticate with a client secret that is an ES256 JWT signed with our
Sign in with Apple key (APPLE_TEAM_ID, APPLE_KEY_ID, APPLE_PRIVATE_KEY), as
Apple documents it: `iss` = team id, `sub` = client id, `aud` = Apple's
issuer, `exp` at most six months ahead (ours live five minutes).
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import jwt
import structlog
from flask import current_app

log = structlog.get_logger(__name__)

CLIENT_SECRET_SECONDS = 300
MAX_BODY = 64 * 1024


class AppleError(Exception):
    """Apple's endpoint failed or refused; the message never carries a token."""


def configured() -> bool:
    config = current_app.config
    return bool(config["APPLE_TEAM_ID"] and config["APPLE_KEY_ID"] and config["APPLE_PRIVATE_KEY"])


def client_secret(client_id: str) -> str:
    config = current_app.config
    now = int(time.time())
    return jwt.encode(
        {
            "iss": config["APPLE_TEAM_ID"],
            "iat": now,
            "exp": now + CLIENT_SECRET_SECONDS,
            "aud": config["APPLE_ISSUER"],
            "sub": client_id,
        },
        config["APPLE_PRIVATE_KEY"],
        algorithm="ES256",
        headers={"kid": config["APPLE_KEY_ID"]},
    )


def _post(url: str, form: dict[str, str]) -> dict[str, Any]:
    body = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(  # noqa: S310 - http(s) URLs from our settings
        url,
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
    )
    timeout = float(current_app.config["PROVIDER_HTTP_TIMEOUT_SECONDS"])
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            raw = response.read(MAX_BODY)
    except urllib.error.HTTPError as exc:
        raise AppleError(f"http_{exc.code}") from None
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise AppleError(type(exc).__name__) from None
    try:
        data = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise AppleError("not_json") from None
    return data if isinstance(data, dict) else {}


def exchange_code(client_id: str, code: str, subject: str) -> str:
    """Apple's refresh token for an authorization code (usable once, 5 min).

    The ID token in Apple's answer must name the same user as the one we verified.
    """
    data = _post(
        current_app.config["APPLE_TOKEN_URL"],
        {
            "client_id": client_id,
            "client_secret": client_secret(client_id),
            "code": code,
            "grant_type": "authorization_code",
        },
    )
    refresh = data.get("refresh_token")
    if not isinstance(refresh, str) or not refresh:
        raise AppleError("no_refresh_token")
    id_token = data.get("id_token")
    if isinstance(id_token, str):  # from Apple over TLS; only its subject matters here
        try:
            claims = jwt.decode(id_token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise AppleError("bad_id_token") from None
        if claims.get("sub") != subject:
            raise AppleError("subject_mismatch")
    return refresh


def revoke(client_id: str, refresh_token: str) -> None:
    """Revoke a refresh token at Apple; AppleError when Apple did not confirm."""
    _post(
        current_app.config["APPLE_REVOKE_URL"],
        {
            "client_id": client_id,
            "client_secret": client_secret(client_id),
            "token": refresh_token,
            "token_type_hint": "refresh_token",
        },
    )
