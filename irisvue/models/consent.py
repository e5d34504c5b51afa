from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, DateTime, ForeignKey, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from irisvue.extensions import db
from irisvue.models.base import Timestamps, UUIDPrimaryKey, utcnow

CONSENT_TYPES = ("biometric_capture", "data_processing", "marketing")
JURISDICTIONS = ("gdpr", "bipa", "ccpa", "generic")


class ConsentRecord(UUIDPrimaryKey, Timestamps, db.Model):
    """One entry of the append-only consent ledger."""

    __tablename__ = "consent_records"
    __table_args__ = (
        CheckConstraint(
            "consent_type IN ('biometric_capture', 'data_processing', 'marketing')",
            name="consent_type",
        ),
        CheckConstraint("jurisdiction IN ('gdpr', 'bipa', 'ccpa', 'generic')", name="jurisdiction"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False
    )
    consent_type: Mapped[str] = mapped_column(String(32), nullable=False)
    jurisdiction: Mapped[str] = mapped_column(String(16), nullable=False)
    granted: Mapped[bool] = mapped_column(Boolean, nullable=False)
    granted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ip_address: Mapped[str | None] = mapped_column(String(45))
    consent_text_version: Mapped[str] = mapped_column(String(32), nullable=False)
