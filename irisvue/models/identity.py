"""Sign-in identities at Apple and Google, their single-use nonces, provider events."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, LargeBinary, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from irisvue.extensions import db
from irisvue.models.base import Timestamps, UUIDPrimaryKey, utcnow


class UserIdentity(UUIDPrimaryKey, Timestamps, db.Model):
    """`(provider, subject)` → user: one way in through Apple or Google."""

    __tablename__ = "user_identities"
    __table_args__ = (UniqueConstraint("provider", "subject"),)

    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False
    )
    provider: Mapped[str] = mapped_column(String(16), nullable=False)
    # The provider's stable user id (`sub`).
    subject: Mapped[str] = mapped_column(String(255), nullable=False)
    # The address the provider last reported (an Apple private-relay address too).
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    is_private_email: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    # Apple's `email-disabled` notification: mail to this relay address is paused.
    email_disabled: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    # The client id (`aud`) of the last sign-in: Apple's token endpoints need it.
    client_id: Mapped[str | None] = mapped_column(String(255))
    last_sign_in_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Apple only: the refresh token from the authorization-code exchange, encrypted
    # with the user's data key (crypto-shredded with them); used to revoke on erasure.
    apple_refresh_token: Mapped[bytes | None] = mapped_column(LargeBinary)


class AuthNonce(UUIDPrimaryKey, db.Model):
    """A nonce issued by POST /auth/nonce; only its SHA-256 (hex) is kept.

    The hash is exactly the `nonce` claim the provider puts in the ID token.
    """

    __tablename__ = "auth_nonces"

    nonce_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), index=True, nullable=False
    )
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ProviderEvent(UUIDPrimaryKey, db.Model):
    """A provider notification already handled (deduplication), keyed by a hash."""

    __tablename__ = "provider_events"

    event_key: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    provider: Mapped[str] = mapped_column(String(16), nullable=False)
    event_type: Mapped[str] = mapped_column(String(32), nullable=False)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True, nullable=False
    )
