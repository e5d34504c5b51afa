"""A local identity provider speaking Apple's and Google's protocols, for tests.

A real HTTP server on 127.0.0.1 (a thread) serving:

* `/apple/keys`, `/google/certs`: JWKS of keys generated here (RSA and EC),
  with a configurable `Cache-Control`; `jwks_down` makes them answer 503;
* `/apple/token`: Apple's authorization-code exchange (the client secret is
  checked as Apple does: ES256, our team's key, `aud` Apple, `sub` client id;
  each code works once);
* `/apple/revoke`: Apple's token revocation; `revoke_down` makes it fail.

Every call is recorded. `id_token()` and `apple_notification()` mint tokens
signed with the current keys; `rotate()` replaces a provider's key.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

APPLE_ISSUER = "https://appleid.apple.com"
GOOGLE_ISSUER = "https://accounts.google.com"
APPLE_CLIENT_ID = "com.irisvue.app"
APPLE_WEB_CLIENT_ID = "com.irisvue.web"
GOOGLE_CLIENT_ID = "1234-android.apps.googleusercontent.com"
GOOGLE_IOS_CLIENT_ID = "1234-ios.apps.googleusercontent.com"
TEAM_ID = "TEAM123456"
KEY_ID = "KEY1234567"
ISSUERS = {"apple": APPLE_ISSUER, "google": GOOGLE_ISSUER}
CLIENTS = {"apple": APPLE_CLIENT_ID, "google": GOOGLE_CLIENT_ID}


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class SigningKey:
    kid: str
    algorithm: str  # RS256 | ES256
    private: Any

    @classmethod
    def generate(cls, algorithm: str, kid: str | None = None) -> SigningKey:
        if algorithm == "RS256":
            private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            private = ec.generate_private_key(ec.SECP256R1())
        return cls(kid or f"{algorithm.lower()}-{uuid.uuid4().hex[:8]}", algorithm, private)

    def jwk(self) -> dict[str, Any]:
        exporter = RSAAlgorithm if self.algorithm == "RS256" else ECAlgorithm
        jwk = exporter.to_jwk(self.private.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.algorithm}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@dataclass
class Calls:
    jwks: Counter = field(default_factory=Counter)
    token: list[dict[str, str]] = field(default_factory=list)
    revoke: list[dict[str, str]] = field(default_factory=list)


class IdentityProvider:
    def __init__(self) -> None:
        self.keys = {
            "apple": [SigningKey.generate("RS256", "apple-rsa-1")],
            "google": [
                SigningKey.generate("RS256", "google-rsa-1"),
                SigningKey.generate("ES256", "google-ec-1"),
            ],
        }
        self.team_key = ec.generate_private_key(ec.SECP256R1())
        self.cache_control = {"apple": "max-age=86400", "google": "public, max-age=21600"}
        self.jwks_down = False
        self.jwks_body: bytes | None = None  # served verbatim instead of the keys
        self.token_down = False
        self.revoke_down = False
        self.calls = Calls()
        self.codes: dict[str, str] = {}  # authorization code → Apple user (sub)
        self.refresh_tokens: dict[str, str] = {}  # issued refresh token → sub
        self.revoked: set[str] = set()
        self._lock = threading.Lock()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                provider._get(self)

            def do_POST(self) -> None:
                provider._post(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # -- lifecycle and app settings ------------------------------------------------

    def __enter__(self) -> IdentityProvider:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def settings(self) -> dict[str, Any]:
        """The app config that points both providers at this server."""
        team_pem = self.team_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return {
            "APPLE_CLIENT_IDS": (APPLE_CLIENT_ID, APPLE_WEB_CLIENT_ID),
            "GOOGLE_CLIENT_IDS": (GOOGLE_CLIENT_ID, GOOGLE_IOS_CLIENT_ID),
            "APPLE_TEAM_ID": TEAM_ID,
            "APPLE_KEY_ID": KEY_ID,
            "APPLE_PRIVATE_KEY": team_pem,
            "APPLE_ISSUER": APPLE_ISSUER,
            "APPLE_JWKS_URL": f"{self.base}/apple/keys",
            "APPLE_TOKEN_URL": f"{self.base}/apple/token",
            "APPLE_REVOKE_URL": f"{self.base}/apple/revoke",
            "GOOGLE_ISSUERS": (GOOGLE_ISSUER, "accounts.google.com"),
            "GOOGLE_JWKS_URL": f"{self.base}/google/certs",
            "PROVIDER_HTTP_TIMEOUT_SECONDS": 2.0,
            "APPLE_REVOKE_BACKOFF_SECONDS": (0, 0),
        }

    # -- tokens ---------------------------------------------------------------------

    def id_token(
        self,
        provider: str,
        sub: str,
        *,
        nonce: str | None = None,
        nonce_claim: str | None = None,
        email: str | None = "",
        email_verified: Any = True,
        is_private_email: Any = None,
        aud: Any = None,
        iss: str | None = None,
        iat: float | None = None,
        exp: float | None = None,
        key: SigningKey | None = None,
        headers: dict[str, Any] | None = None,
        **extra: Any,
    ) -> str:
        """An ID token as the provider would sign it; `nonce` is the raw one (hashed here)."""
        if email == "":
            email = f"{sub}@example.com"
        now = time.time()
        claims: dict[str, Any] = {
            "iss": iss or ISSUERS[provider],
            "aud": aud or CLIENTS[provider],
            "sub": sub,
            "iat": int(iat if iat is not None else now),
            "exp": int(exp if exp is not None else now + 600),
            **extra,
        }
        if email is not None:
            claims["email"] = email
            if provider == "google":
                claims["email_verified"] = email_verified
            else:
                claims["email_verified"] = "true"
        if is_private_email is not None:
            claims["is_private_email"] = is_private_email
        if nonce is not None:
            claims["nonce"] = sha256_hex(nonce)
        if nonce_claim is not None:  # verbatim (e.g. the raw nonce instead of its hash)
            claims["nonce"] = nonce_claim
        signer = key or self.keys[provider][0]
        return jwt.encode(
            claims,
            signer.private,
            algorithm=signer.algorithm,
            headers={"kid": signer.kid, **(headers or {})},
        )

    def apple_notification(
        self,
        kind: str,
        sub: str,
        *,
        jti: str | None = None,
        event_time: int | None = None,
        key: SigningKey | None = None,
        aud: str = APPLE_CLIENT_ID,
        **event: Any,
    ) -> str:
        now = int(time.time())
        events = {"type": kind, "sub": sub, "event_time": event_time or now * 1000, **event}
        claims = {"iss": APPLE_ISSUER, "aud": aud, "iat": now, "events": json.dumps(events)}
        if jti != "":  # "": no jti at all (deduplicated on sub + event_time + type)
            claims["jti"] = jti or secrets.token_hex(8)
        signer = key or self.keys["apple"][0]
        return jwt.encode(claims, signer.private, algorithm="RS256", headers={"kid": signer.kid})

    def rotate(self, provider: str, algorithm: str = "RS256") -> SigningKey:
        """The provider's keys replaced by a new one (new kid)."""
        new = SigningKey.generate(algorithm)
        self.keys[provider] = [new]
        return new

    def authorization_code(self, sub: str) -> str:
        code = f"c.{secrets.token_hex(12)}"
        self.codes[code] = sub
        return code

    # -- HTTP -------------------------------------------------------------------------

    def _send(
        self, handler: BaseHTTPRequestHandler, status: int, body: Any, **headers: str
    ) -> None:
        raw = json.dumps(body).encode() if body is not None else b""
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(raw)))
        for name, value in headers.items():
            handler.send_header(name.replace("_", "-"), value)
        handler.end_headers()
        handler.wfile.write(raw)

    def _get(self, handler: BaseHTTPRequestHandler) -> None:
        provider = {"/apple/keys": "apple", "/google/certs": "google"}.get(handler.path)
        if provider is None:
            self._send(handler, 404, {"error": "not_found"})
            return
        with self._lock:
            self.calls.jwks[provider] += 1
        if self.jwks_down:
            self._send(handler, 503, {"error": "unavailable"})
            return
        if self.jwks_body is not None:
            handler.send_response(200)
            handler.send_header("Content-Length", str(len(self.jwks_body)))
            handler.end_headers()
            handler.wfile.write(self.jwks_body)
            return
        keys = [key.jwk() for key in self.keys[provider]]
        self._send(handler, 200, {"keys": keys}, Cache_Control=self.cache_control[provider])

    def _client_ok(self, form: dict[str, str]) -> bool:
        try:
            claims = jwt.decode(
                form.get("client_secret", ""),
                self.team_key.public_key(),
                algorithms=["ES256"],
                audience=APPLE_ISSUER,
                issuer=TEAM_ID,
            )
            header = jwt.get_unverified_header(form["client_secret"])
        except (jwt.PyJWTError, KeyError):
            return False
        return claims.get("sub") == form.get("client_id") and header.get("kid") == KEY_ID

    def _post(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(handler.rfile.read(length).decode()).items()}
        if handler.path == "/apple/token":
            with self._lock:
                self.calls.token.append(form)
            if self.token_down:
                self._send(handler, 503, {"error": "unavailable"})
            elif not self._client_ok(form):
                self._send(handler, 400, {"error": "invalid_client"})
            elif (
                form.get("grant_type") != "authorization_code" or form.get("code") not in self.codes
            ):
                self._send(handler, 400, {"error": "invalid_grant"})
            else:
                sub = self.codes.pop(form["code"])
                refresh = f"r.{secrets.token_hex(16)}"
                self.refresh_tokens[refresh] = sub
                id_token = self.id_token("apple", sub, aud=form["client_id"])
                self._send(
                    handler,
                    200,
                    {
                        "access_token": f"a.{secrets.token_hex(8)}",
                        "token_type": "Bearer",
                        "expires_in": 3600,
                        "refresh_token": refresh,
                        "id_token": id_token,
                    },
                )
        elif handler.path == "/apple/revoke":
            with self._lock:
                self.calls.revoke.append(form)
            if self.revoke_down:
                self._send(handler, 503, {"error": "unavailable"})
            elif not self._client_ok(form):
                self._send(handler, 400, {"error": "invalid_client"})
            else:
                self.revoked.add(form.get("token", ""))
                self._send(handler, 200, None)
        else:
            self._send(handler, 404, {"error": "not_found"})


@contextlib.contextmanager
def identity_provider():
    with IdentityProvider() as provider:
        yield provider


# -- client side: what the app does -------------------------------------------------

NONCE = "/api/v1/auth/nonce"
ID_TOKEN = "/api/v1/auth/id-token"
IDENTITIES = "/api/v1/auth/identities"
APPLE_NOTIFICATIONS = "/api/v1/auth/providers/apple/notifications"


def new_nonce(client) -> str:
    response = client.post(NONCE)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["nonce"]


def sign_in_with(client, idp: IdentityProvider, provider: str, sub: str, **claims: Any):
    """The app's whole sequence: nonce → SDK (token with the hashed nonce) → /id-token."""
    nonce = new_nonce(client)
    extra = {k: claims.pop(k) for k in ("authorization_code", "name") if k in claims}
    token = idp.id_token(provider, sub, nonce=nonce, **claims)
    return client.post(
        ID_TOKEN, json={"provider": provider, "id_token": token, "nonce": nonce, **extra}
    )


def fresh_proof(client, idp: IdentityProvider, provider: str, sub: str, **claims: Any) -> dict:
    """`{provider, id_token, nonce}` for re-authentication."""
    nonce = new_nonce(client)
    return {
        "provider": provider,
        "id_token": idp.id_token(provider, sub, nonce=nonce, **claims),
        "nonce": nonce,
    }
