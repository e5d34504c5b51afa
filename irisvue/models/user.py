from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from irisvue.extensions import db
from irisvue.models.base import Timestamps, UUIDPrimaryKey, utcnow


class User(UUIDPrimaryKey, Timestamps, db.Model):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("auth_provider", "auth_provider_id"),)

    # Stored normalised (trimmed, lower-cased) so uniqueness is case-insensitive.
    email: Mapped[str] = mapped_column(String(320), unique=True, nullable=False)
    # NULL for accounts that sign in through an identity provider.
    hashed_password: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    is_verified: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    auth_provider: Mapped[str] = mapped_column(String(32), default="password", nullable=False)
    auth_provider_id: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, nullable=False
    )
    # Bumped whenever every session is revoked at once (sign-out everywhere, password
    # change or reset, erasure): export links are bound to it, so each of those voids them.
    sessions_epoch: Mapped[int] = mapped_column(
        Integer, default=0, server_default="0", nullable=False
    )
    # The last interaction: the retention clock for biometric data (BIPA §15(a)).
    last_seen_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, nullable=False
    )
