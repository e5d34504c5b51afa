"""JWTs bound to sessions, and the checks every protected request runs.

Every token carries its session id (`sid`). A token is accepted only while its
session is live in the database, which is the source of truth: one query per
authenticated request reads the session and its user's columns together (the
revocation check and `current_account` in one round trip). Revocations are
not mirrored in Redis: a lookup there only ever short-circuited tokens that
were already revoked, and cost a Redis round trip (~0.2-0.4 ms of worker CPU,
bench/profile.py) on every valid request, which the database query had to
make anyway.

A pair is a pure function of (user, session, jtis, issued_at, lifetimes):
HS256 is deterministic, so the grace window of a concurrent refresh re-signs
the very pair the winner got without the database ever holding a token.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import structlog
from flask import current_app, g
from flask_jwt_extended import JWTManager, create_access_token, create_refresh_token
from sqlalchemy import Select, bindparam, select

from irisvue.extensions import REVOCATION_BIND, db
from irisvue.models import Session, User
from irisvue.models.base import as_utc, utcnow

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": "bearer",
            "expires_in": self.expires_in,
        }


def access_lifetime() -> timedelta:
    return current_app.config["JWT_ACCESS_TOKEN_EXPIRES"]


def refresh_lifetime() -> timedelta:
    return current_app.config["JWT_REFRESH_TOKEN_EXPIRES"]


def whole_seconds(moment: datetime) -> datetime:
    return as_utc(moment).replace(microsecond=0)


def mint_pair(session: Session) -> TokenPair:
    """The pair of the session's current generation (same inputs → same strings)."""
    issued = whole_seconds(session.issued_at)
    iat = int(issued.timestamp())
    access_exp = iat + int(access_lifetime().total_seconds())
    # Never past the session's absolute end, however often it was refreshed.
    refresh_exp = min(
        iat + int(refresh_lifetime().total_seconds()), int(session_end(session).timestamp())
    )
    identity = str(session.user_id)
    sid = str(session.id)
    access = create_access_token(
        identity=identity,
        fresh=False,
        additional_claims={
            "sid": sid,
            "jti": session.access_jti,
            "iat": iat,
            "nbf": iat,
            "exp": access_exp,
        },
    )
    refresh = create_refresh_token(
        identity=identity,
        additional_claims={
            "sid": sid,
            "jti": session.refresh_jti,
            "iat": iat,
            "nbf": iat,
            "exp": refresh_exp,
        },
    )
    return TokenPair(access, refresh, access_exp - iat)


def session_end(session: Session) -> datetime:
    """The absolute end of a session: SESSION_MAX_DAYS after it was opened."""
    return as_utc(session.created_at) + timedelta(days=current_app.config["SESSION_MAX_DAYS"])


def new_generation(session: Session, now: datetime) -> None:
    """Give the session fresh jtis; the refresh token it replaces becomes `previous`."""
    issued = whole_seconds(now)
    if session.refresh_jti:
        session.previous_refresh_jti = session.refresh_jti
    session.refresh_jti = str(uuid.uuid4())
    session.access_jti = str(uuid.uuid4())
    session.issued_at = issued
    session.expires_at = min(issued + refresh_lifetime(), session_end(session))


def _parse_uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


@cache
def _session_and_account() -> Select:
    """The session's state and its user's columns (UserSchema's and `is_active`), one row.

    Built once: constructing the statement cost more CPU than running it
    (bench/profile.py --keep-stacks). Core columns, not ORM entities, and its own
    autocommit connection: one round trip, no BEGIN/ROLLBACK, no identity map
    (-300 µs of worker CPU per request against `select(Session, User)`, bench/ab.py).
    """
    sessions, users = Session.__table__, User.__table__
    return (
        select(
            sessions.c.id.label("session_id"),
            sessions.c.user_id.label("session_user_id"),
            sessions.c.revoked_at,
            sessions.c.expires_at,
            users.c.id,
            users.c.email,
            users.c.is_active,
            users.c.is_verified,
            users.c.created_at,
            users.c.auth_provider,
        )
        .join(users, users.c.id == sessions.c.user_id)
        .where(sessions.c.id == bindparam("sid"))
    )


def token_is_revoked(jwt_header: dict[str, Any], payload: dict[str, Any]) -> bool:
    sid = _parse_uuid(payload.get("sid"))
    user_id = _parse_uuid(payload.get("sub"))
    if sid is None or user_id is None:
        return False  # token_verification_loader refuses it as invalid
    # A read of committed state, as the first statement of a transaction would see,
    # on a connection born autocommit (no isolation level set and reset per request).
    engines = db.engines
    with (engines.get(REVOCATION_BIND) or engines[None]).connect() as conn:
        row = conn.execute(_session_and_account(), {"sid": sid}).first()
    if row is None:
        return True  # the session (or its user) was deleted
    if row.session_user_id != user_id or row.revoked_at is not None:
        return True
    if as_utc(row.expires_at) <= utcnow():
        return True
    g.auth_account = row
    return False


def load_user(jwt_header: dict[str, Any], payload: dict[str, Any]) -> Any:
    """The account row the revocation check read (`irisvue.api.current_account`)."""
    account = g.get("auth_account")
    if account is None or not account.is_active:
        return None  # → 401 account_disabled
    return account


def current_session_id() -> uuid.UUID | None:
    """The session of the request's verified token (set by the revocation check)."""
    account = g.get("auth_account")
    return account.session_id if account is not None else None


def has_session_claims(jwt_header: dict[str, Any], payload: dict[str, Any]) -> bool:
    return _parse_uuid(payload.get("sid")) is not None


def init_tokens(jwt: JWTManager) -> None:
    jwt.token_in_blocklist_loader(token_is_revoked)
    jwt.user_lookup_loader(load_user)
    jwt.token_verification_loader(has_session_claims)
