"""Rate limits (flask-limiter) on Redis, falling back to per-process memory.

When Redis is unreachable flask-limiter switches to its in-memory storage and
keeps applying the same limits there (`RATELIMIT_IN_MEMORY_FALLBACK_ENABLED`),
so an outage weakens the limits to per process but never removes them. It
probes Redis again with exponential backoff and switches back on its own.

Keys that name an account are keyed hashes, so Redis holds no email address.

Per-IP keys are the client's address as ProxyFix left it (TRUSTED_PROXIES
hops of X-Forwarded-For honoured, no more), IPv6 cut to its /64: one
subscriber gets a whole /64 and could otherwise rotate through it.

`Limiter._storage_dead` (private, no public reset) is version-fenced:
tests/test_dependency_fences.py; pyproject bounds flask-limiter below 4.2.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from flask import Flask, Response, current_app, request
from flask_jwt_extended import get_jwt_identity
from flask_limiter import RouteLimit

from irisvue.auth.audit import pseudonym
from irisvue.auth.lockout import init_lockout
from irisvue.auth.schemas import normalize_email
from irisvue.extensions import limiter

RATE_LIMITED = "Too many requests; retry after the number of seconds in Retry-After."


def init_ratelimit(app: Flask) -> None:
    redis_url = app.config.get("REDIS_URL")
    app.config.setdefault("RATELIMIT_STORAGE_URI", redis_url or "memory://")
    app.config.setdefault(
        "RATELIMIT_STORAGE_OPTIONS",
        # A dead Redis must cost milliseconds before the memory fallback takes over.
        {"socket_connect_timeout": 0.5, "socket_timeout": 0.5} if redis_url else {},
    )
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    app.config.setdefault("RATELIMIT_STRATEGY", "moving-window")
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "irisvue-rl")
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", False)  # never fail open
    limiter.init_app(app)
    init_lockout(app)
    # One Limiter object serves every app of the process (tests build many):
    # a new app starts on its own storage, not on the last app's fallback.
    limiter._storage_dead = False


def _config_limit(name: str) -> Callable[[], str]:
    return lambda: current_app.config[name]


def _body_email() -> str:
    body = request.get_json(silent=True)
    raw = body.get("email") if isinstance(body, dict) else None
    if not isinstance(raw, str):
        return "none"
    try:
        email = normalize_email(raw)
    except ValueError:
        email = raw.strip().lower()
    return pseudonym("ratelimit-email", email)


def client_key() -> str:
    """The client's IPv4 address, or the /64 its IPv6 address belongs to."""
    raw = request.remote_addr or ""
    try:
        address = ipaddress.ip_address(raw.split("%", 1)[0])
    except ValueError:
        return raw or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address)


def _user_key() -> str:
    return pseudonym("ratelimit-user", str(get_jwt_identity()))


def _failed(response: Response) -> bool:
    return response.status_code in (401, 403)


def per_ip(setting: str, scope: str) -> RouteLimit:
    return limiter.limit(
        _config_limit(setting),
        key_func=client_key,
        scope=scope,
        error_message=RATE_LIMITED,
    )


def per_email(setting: str, scope: str) -> RouteLimit:
    """Keyed by the normalised `email` of the JSON body (known or not: no enumeration)."""
    return limiter.limit(
        _config_limit(setting),
        key_func=_body_email,
        scope=scope,
        error_message=RATE_LIMITED,
    )


def per_user(setting: str, scope: str, *, failures_only: bool = False) -> RouteLimit:
    """Keyed by the authenticated user: apply below `@jwt_required()`."""
    return limiter.limit(
        _config_limit(setting),
        key_func=_user_key,
        scope=scope,
        error_message=RATE_LIMITED,
        deduct_when=_failed if failures_only else None,
    )
