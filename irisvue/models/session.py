from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from irisvue.extensions import db
from irisvue.models.base import Timestamps, UUIDPrimaryKey, utcnow


class Session(UUIDPrimaryKey, Timestamps, db.Model):
    """A refresh-token family: one sign-in on one device, until revoked or expired.

    Tokens themselves are never stored: only the ids (`jti`) of the current
    pair and of the refresh token it replaced, so reuse of a spent refresh
    token is detectable and a concurrent duplicate refresh inside the grace
    window can be answered by re-signing the very same pair.
    """

    __tablename__ = "sessions"

    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False
    )
    last_used_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, nullable=False
    )
    # Slides with every rotation: the current refresh token's `exp`.
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_reason: Mapped[str | None] = mapped_column(String(32))
    ip_address: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(256))
    # The current pair: both tokens share `issued_at` (whole seconds) as `iat`.
    refresh_jti: Mapped[str] = mapped_column(String(36), nullable=False)
    access_jti: Mapped[str] = mapped_column(String(36), nullable=False)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # The refresh token the current pair replaced (the grace window's key).
    previous_refresh_jti: Mapped[str | None] = mapped_column(String(36))
    # The Apple/Google identity that signed this session in (NULL: a password).
    identity_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("user_identities.id", ondelete="SET NULL"), index=True
    )
