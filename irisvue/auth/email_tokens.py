"""Single-use tokens sent by email, bound to the address they were sent to.

Only a token's SHA-256 is stored, with a keyed hash of the address it was
mailed to: consuming it fails once the account's email differs, so a token
sent to an old address (an email change racing the email job) never
verifies the new one.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

from sqlalchemy import delete, select

from irisvue.auth.audit import pseudonym
from irisvue.auth.nonces import sha256_hex
from irisvue.errors import APIError
from irisvue.extensions import db
from irisvue.models import EmailToken, User
from irisvue.models.base import as_utc, utcnow

VERIFY_EMAIL = "verify_email"
PASSWORD_RESET = "password_reset"  # noqa: S105 - a token purpose


def address_hash(address: str) -> str:
    return pseudonym("email-token-address", address)


def void_tokens(user_id: uuid.UUID, purpose: str | None = None) -> None:
    """Delete the user's unused tokens (of `purpose`, or all), in the caller's transaction."""
    stmt = delete(EmailToken).where(EmailToken.user_id == user_id, EmailToken.used_at.is_(None))
    if purpose is not None:
        stmt = stmt.where(EmailToken.purpose == purpose)
    db.session.execute(stmt)


def issue_email_token(user_id: uuid.UUID, purpose: str, lifetime: timedelta, address: str) -> str:
    """A new single-use token for `address`; older unused ones of the purpose are voided.

    Commits."""
    token = secrets.token_urlsafe(32)
    void_tokens(user_id, purpose)
    db.session.add(
        EmailToken(
            user_id=user_id,
            purpose=purpose,
            token_hash=sha256_hex(token),
            expires_at=utcnow() + lifetime,
            address_hash=address_hash(address),
        )
    )
    db.session.commit()
    return token


def _invalid() -> APIError:
    return APIError(403, "email_token_invalid", "The link is invalid or was already used.")


def usable_token(token: str, purpose: str, *, lock: bool = False) -> tuple[EmailToken, User]:
    """The unused, unexpired token and its user, whose address it was sent to."""
    stmt = select(EmailToken).where(
        EmailToken.token_hash == sha256_hex(token), EmailToken.purpose == purpose
    )
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    found = db.session.scalar(stmt)
    if found is None or found.used_at is not None:
        db.session.rollback()
        raise _invalid()
    if as_utc(found.expires_at) <= utcnow():
        db.session.rollback()
        raise APIError(403, "email_token_expired", "The link has expired; ask for a new one.")
    user = db.session.get(
        User, found.user_id, with_for_update=True if lock else None, populate_existing=lock
    )
    assert user is not None  # the token row cascades away with its user
    if found.address_hash != address_hash(user.email):
        db.session.rollback()  # mailed to an address the account no longer has
        raise _invalid()
    return found, user
