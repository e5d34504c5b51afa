"""Sessions (refresh-token families): open, rotate, revoke, list.

Rotation follows RFC 9700 §4.14: each refresh spends the presented refresh
token; presenting a spent one again revokes the whole session. Two refreshes
racing with the same token are serialised by a row lock (SELECT ... FOR
UPDATE); the loser, arriving within REFRESH_REUSE_GRACE_SECONDS, gets the pair
the winner got instead of killing the session.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, request
from sqlalchemy import and_, or_, select, update

from irisvue.auth import audit
from irisvue.auth.tokens import (
    TokenPair,
    mint_pair,
    new_generation,
    session_end,
)
from irisvue.errors import APIError
from irisvue.extensions import db
from irisvue.models import Session, User
from irisvue.models.base import as_utc, utcnow
from irisvue.pagination import decode_keyset, encode_keyset

USER_AGENT_MAX = 256


def _client() -> tuple[str | None, str | None]:
    agent = request.headers.get("User-Agent") or None
    return request.remote_addr, agent[:USER_AGENT_MAX] if agent else None


def open_session(user: User, *, identity_id: uuid.UUID | None = None) -> tuple[Session, TokenPair]:
    """A new session for `user` in the current transaction, and its first pair
    (`identity_id`: the Apple/Google identity that signed it in)."""
    now = utcnow()
    ip, agent = _client()
    session = Session(
        id=uuid.uuid4(),
        user_id=user.id,
        created_at=now,
        last_used_at=now,
        ip_address=ip,
        user_agent=agent,
        refresh_jti="",
        access_jti="",
        identity_id=identity_id,
    )
    new_generation(session, now)
    session.previous_refresh_jti = None
    db.session.add(session)
    return session, mint_pair(session)


def _locked(session_id: uuid.UUID) -> Session | None:
    stmt = (
        select(Session)
        .where(Session.id == session_id)
        .with_for_update()
        # The revocation check loaded this row moments ago: read it again, locked.
        .execution_options(populate_existing=True)
    )
    return db.session.execute(stmt).scalar_one_or_none()


def refresh(claims: dict[str, Any]) -> TokenPair:
    """Rotate the session of a verified refresh token; detects reuse."""
    session = _locked(uuid.UUID(claims["sid"]))
    now = utcnow()
    if session is not None and session.revoked_at is None and session_end(session) <= now:
        _expire(session, now)
    if session is None or session.revoked_at is not None or as_utc(session.expires_at) <= now:
        db.session.rollback()
        raise APIError(401, "token_revoked", "The token has been revoked.")
    jti = claims["jti"]
    if jti == session.refresh_jti:
        new_generation(session, now)
        session.last_used_at = now
        pair = mint_pair(session)
        db.session.commit()
        return pair
    grace = timedelta(seconds=current_app.config["REFRESH_REUSE_GRACE_SECONDS"])
    if jti == session.previous_refresh_jti and now - as_utc(session.issued_at) <= grace:
        pair = mint_pair(session)  # the same pair the concurrent winner received
        db.session.rollback()
        return pair
    revoke([session], "refresh_reused", now=now)
    audit.record("refresh_reused", user_id=session.user_id, session_id=session.id)
    db.session.commit()
    raise APIError(
        401,
        "token_reused",
        "This refresh token was already used; the session has been revoked.",
    )


def _expire(session: Session, now: datetime) -> None:
    """The session reached SESSION_MAX_DAYS: it ends, whatever its refresh token says."""
    revoke([session], "session_expired", now=now)
    audit.record("session_expired", user_id=session.user_id, session_id=session.id)
    db.session.commit()
    raise APIError(401, "session_expired", "The session reached its maximum age; sign in again.")


def revoke(sessions: list[Session], reason: str, *, now: datetime | None = None) -> None:
    now = now or utcnow()
    for session in sessions:
        if session.revoked_at is None:
            session.revoked_at = now
            session.revoked_reason = reason


def live_sessions(user_id: uuid.UUID, *, lock: bool = False) -> list[Session]:
    stmt = select(Session).where(
        Session.user_id == user_id,
        Session.revoked_at.is_(None),
        Session.expires_at > utcnow(),
    )
    if lock:
        stmt = stmt.with_for_update()
    return list(db.session.scalars(stmt))


def revoke_all(user_id: uuid.UUID, reason: str, *, keep: uuid.UUID | None = None) -> list[Session]:
    """Revoke every live session of the user but `keep`, in the caller's transaction,
    and start a new sessions epoch (what export links are bound to)."""
    sessions = [s for s in live_sessions(user_id, lock=True) if s.id != keep]
    revoke(sessions, reason)
    db.session.execute(
        update(User)
        .where(User.id == user_id)
        .values(sessions_epoch=User.sessions_epoch + 1)
        .execution_options(synchronize_session=False)
    )
    return sessions


def logout(session_id: uuid.UUID) -> None:
    session = _locked(session_id)
    if session is None:
        return
    revoke([session], "logout")
    audit.record("logout", user_id=session.user_id, session_id=session.id)
    db.session.commit()


def logout_all(user_id: uuid.UUID) -> None:
    sessions = revoke_all(user_id, "logout_all")
    audit.record("logout_all", user_id=user_id, details={"sessions": len(sessions)})
    db.session.commit()


def delete_session(user_id: uuid.UUID, session_id: uuid.UUID) -> None:
    session = _locked(session_id)
    # Another user's session is indistinguishable from a missing one.
    if session is None or session.user_id != user_id or session.revoked_at is not None:
        db.session.rollback()
        raise APIError(404, "session_not_found", "No such session.")
    revoke([session], "revoked_by_user")
    audit.record("session_revoked", user_id=user_id, session_id=session.id)
    db.session.commit()


def _encode_cursor(session: Session) -> str:
    return encode_keyset(as_utc(session.created_at), session.id)


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        return decode_keyset(cursor)
    except ValueError as exc:
        raise APIError(
            422, "invalid_cursor", "The cursor is not valid.", errors={"cursor": ["Invalid."]}
        ) from exc


def list_sessions(
    user_id: uuid.UUID, current_id: uuid.UUID | None, limit: int, cursor: str | None
) -> dict[str, Any]:
    """Live sessions, newest first, keyset-paginated."""
    stmt = select(Session).where(
        Session.user_id == user_id,
        Session.revoked_at.is_(None),
        Session.expires_at > utcnow(),
    )
    if cursor is not None:  # "" too is a cursor, and not a valid one
        created, ident = _decode_cursor(cursor)
        stmt = stmt.where(
            or_(
                Session.created_at < created,
                and_(Session.created_at == created, Session.id < ident),
            )
        )
    stmt = stmt.order_by(Session.created_at.desc(), Session.id.desc()).limit(limit + 1)
    rows = list(db.session.scalars(stmt))
    page = rows[:limit]
    items = [
        {
            "id": s.id,
            "created_at": as_utc(s.created_at),
            "last_used_at": as_utc(s.last_used_at),
            "expires_at": as_utc(s.expires_at),
            "ip_address": s.ip_address,
            "user_agent": s.user_agent,
            "current": s.id == current_id,
        }
        for s in page
    ]
    next_cursor = _encode_cursor(page[-1]) if len(rows) > limit else None
    return {"items": items, "next_cursor": next_cursor}
