"""Accounts: registration, login, password change and the email-token flows.

Argon2 runs with no database connection checked out: a hash takes ~100 ms
and may wait for a free hashing slot, and holding a pooled connection that
long would let a burst of logins starve the pool.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from flask import current_app
from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError

from irisvue.auth import audit, lockout, reauth, sessions
from irisvue.auth.email_tokens import PASSWORD_RESET, VERIFY_EMAIL, usable_token, void_tokens
from irisvue.auth.notices import notify
from irisvue.auth.passwords import get_passwords, is_common
from irisvue.auth.tokens import TokenPair
from irisvue.errors import APIError
from irisvue.extensions import db
from irisvue.jobs import outbox
from irisvue.models import EmailToken, Session, User
from irisvue.models.base import utcnow

CURRENT_PASSWORD_WRONG = "The current password is wrong."  # noqa: S105 - a message


def _refuse_common(password: str, field: str) -> None:
    if is_common(password):
        raise APIError(
            422,
            "password_too_common",
            "This password is too common; choose another.",
            errors={field: ["This password appears in a list of common passwords."]},
        )


def _email_taken() -> APIError:
    return APIError(409, "email_taken", "An account with this email already exists.")


def register(email: str, password: str) -> dict[str, Any]:
    _refuse_common(password, "password")
    hashed = get_passwords().hash(password)
    if db.session.scalar(select(User.id).where(User.email == email)) is not None:
        raise _email_taken()
    user = User(email=email, hashed_password=hashed)
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError:  # a concurrent registration won the race
        db.session.rollback()
        raise _email_taken() from None
    session, pair = sessions.open_session(user)
    audit.record("registered", user_id=user.id, session_id=session.id)
    outbox.submit("email.verify_email", user_id=user.id)
    outbox.commit()
    return {"user": user, **pair.as_dict()}


def login(email: str, password: str) -> TokenPair:
    row = db.session.execute(
        select(User.id, User.hashed_password).where(User.email == email)
    ).first()
    db.session.rollback()  # release the connection while hashing
    passwords = get_passwords()
    hashed = row.hashed_password if row else None
    # An unknown email is verified against a dummy hash: same time, same answer.
    # The account's failure budget is drawn on before the check (auth.lockout).
    if not lockout.checked(email, lambda: passwords.verify(hashed, password)):
        audit.record("login_failed", user_id=row.id if row else None)
        db.session.commit()
        raise APIError(401, "invalid_credentials", "The email or password is wrong.")
    rehashed = passwords.hash(password) if passwords.needs_rehash(hashed) else None
    user = db.session.get(User, row.id)
    if user is None:
        raise APIError(401, "invalid_credentials", "The email or password is wrong.")
    if not user.is_active:
        audit.record("login_failed", user_id=user.id, details={"reason": "account_disabled"})
        db.session.commit()
        raise APIError(403, "account_disabled", "This account is disabled.")
    if rehashed and user.hashed_password == hashed:
        user.hashed_password = rehashed  # the parameters changed since it was hashed
    user.last_seen_at = utcnow()
    session, pair = sessions.open_session(user)
    audit.record("login_succeeded", user_id=user.id, session_id=session.id)
    db.session.commit()
    return pair


def change_password(
    user: User, session_id: uuid.UUID | None, current: str | None, new: str
) -> None:
    _refuse_common(new, "new_password")
    user_id = user.id
    checked = reauth.check_password(user, current, detail=CURRENT_PASSWORD_WRONG)
    new_hash = get_passwords().hash(new)
    user = db.session.get(User, user_id, with_for_update=True, populate_existing=True)
    if user is None or user.hashed_password != checked:
        db.session.rollback()  # changed concurrently: verify against the new one
        raise APIError(409, "conflict", "The password changed meanwhile; try again.")
    user.hashed_password = new_hash
    void_tokens(user_id, PASSWORD_RESET)  # a reset link mailed earlier dies with the old one
    notify(user_id, "password_changed", user.email)
    others = sessions.revoke_all(user_id, "password_changed", keep=session_id)
    audit.record(
        "password_changed",
        user_id=user_id,
        session_id=session_id,
        details={"sessions_revoked": len(others)},
    )
    outbox.commit()


def change_email(user: User, new_email: str, current_password: str | None) -> User:
    user_id = user.id
    checked = reauth.check_password(user, current_password, detail=CURRENT_PASSWORD_WRONG)
    user = db.session.get(User, user_id, with_for_update=True, populate_existing=True)
    if user is None or user.hashed_password != checked:
        db.session.rollback()
        raise APIError(409, "conflict", "The account changed meanwhile; try again.")
    if new_email == user.email:
        db.session.rollback()
        return user
    if db.session.scalar(select(User.id).where(User.email == new_email)) is not None:
        raise _email_taken()
    old_email = user.email
    user.email = new_email
    user.is_verified = False
    # Tokens mailed to the old address must not verify the new one.
    void_tokens(user_id)
    audit.record("email_changed", user_id=user_id)
    notify(user_id, "email_changed", old_email)
    notify(user_id, "email_added", new_email)
    outbox.submit("email.verify_email", user_id=user_id)
    try:
        outbox.commit()
    except IntegrityError:
        db.session.rollback()
        raise _email_taken() from None
    return user


def request_verification(user: User) -> None:
    if user.is_verified:
        raise APIError(409, "already_verified", "This email address is already verified.")
    outbox.submit("email.verify_email", user_id=user.id)
    outbox.commit()


def request_password_reset(email: str) -> None:
    """Same answer, and at least PASSWORD_RESET_REQUEST_MIN_MS, known email or not."""
    started = time.monotonic()
    user_id = db.session.scalar(
        select(User.id).where(User.email == email, User.is_active.is_(True))
    )
    if user_id is not None:
        audit.record("password_reset_requested", user_id=user_id)
        outbox.submit("email.password_reset", user_id=user_id)
        # Handed to Redis after the answer is sent: an unknown email costs no
        # Redis round trip, so a known one must not either (slow Redis included).
        outbox.commit(background=True)
    else:
        db.session.rollback()
    floor = current_app.config["PASSWORD_RESET_REQUEST_MIN_MS"] / 1000
    remaining = floor - (time.monotonic() - started)
    if remaining > 0:
        time.sleep(remaining)


def verify_email(token: str) -> User:
    found, user = usable_token(token, VERIFY_EMAIL, lock=True)
    found.used_at = utcnow()
    user.is_verified = True
    audit.record("email_verified", user_id=user.id)
    db.session.commit()
    return user


def reset_password(token: str, new_password: str) -> None:
    _refuse_common(new_password, "new_password")
    usable_token(token, PASSWORD_RESET)  # refuse bad tokens before paying for a hash
    db.session.rollback()
    new_hash = get_passwords().hash(new_password)
    found, user = usable_token(token, PASSWORD_RESET, lock=True)
    now = utcnow()
    found.used_at = now
    user.hashed_password = new_hash
    user.is_verified = True  # the reset proved control of the mailbox
    revoked = sessions.revoke_all(user.id, "password_reset")
    audit.record("password_reset", user_id=user.id, details={"sessions_revoked": len(revoked)})
    void_tokens(user.id)
    notify(user.id, "password_changed", user.email)
    outbox.commit()


def purge_spent_credentials() -> dict[str, int]:
    """Delete used or expired email tokens and revoked or expired sessions.

    For the periodic retention sweep. Safe at any time: a token whose session
    row is gone is refused exactly like a revoked one.
    """
    now = utcnow()
    tokens = db.session.execute(
        delete(EmailToken).where(or_(EmailToken.used_at.is_not(None), EmailToken.expires_at <= now))
    ).rowcount
    dead = db.session.execute(
        delete(Session).where(or_(Session.revoked_at.is_not(None), Session.expires_at <= now))
    ).rowcount
    db.session.commit()
    return {"email_tokens": tokens or 0, "sessions": dead or 0}
