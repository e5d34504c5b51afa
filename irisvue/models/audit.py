from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ForeignKey, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from irisvue.extensions import db
from irisvue.models.base import JSONType, Timestamps, UUIDPrimaryKey

AUDIT_EVENTS = (
    "registered",
    "login_succeeded",
    "login_failed",
    "refresh_reused",
    "logout",
    "logout_all",
    "session_revoked",
    "password_changed",
    "password_reset_requested",
    "password_reset",
    "email_verified",
    "email_changed",
)


class AuditEvent(UUIDPrimaryKey, Timestamps, db.Model):
    """A security event. Never a password, token or email; the IP is keyed-hashed."""

    __tablename__ = "audit_events"

    # SET NULL: an erased account leaves anonymous events behind, not its id.
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    event: Mapped[str] = mapped_column(String(40), nullable=False)
    # HMAC of the client IP under a key derived from SECRET_KEY: correlatable, not reversible.
    ip_hash: Mapped[str | None] = mapped_column(String(32))
    session_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
