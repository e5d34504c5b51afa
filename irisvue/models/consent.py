from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from irisvue.extensions import db
from irisvue.models.base import Timestamps, UUIDPrimaryKey, utcnow

CONSENT_TYPES = ("biometric_capture", "data_processing", "marketing")
JURISDICTIONS = ("gdpr", "bipa", "ccpa", "generic")

_TYPE_CHECK = "IN ('biometric_capture', 'data_processing', 'marketing')"
_JURISDICTION_CHECK = "IN ('gdpr', 'bipa', 'ccpa', 'generic')"


class ConsentDocument(UUIDPrimaryKey, db.Model):
    """One published consent text. Immutable once loaded: a change is a new version."""

    __tablename__ = "consent_documents"
    __table_args__ = (
        UniqueConstraint("type", "jurisdiction", "locale", "version"),
        CheckConstraint(f"type {_TYPE_CHECK}", name="type"),
        CheckConstraint(f"jurisdiction {_JURISDICTION_CHECK}", name="jurisdiction"),
        CheckConstraint("version >= 1", name="version"),
    )

    type: Mapped[str] = mapped_column(String(32), nullable=False)
    jurisdiction: Mapped[str] = mapped_column(String(16), nullable=False)
    locale: Mapped[str] = mapped_column(String(16), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    # Hex SHA-256 of the UTF-8 text: what every consent record pins.
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    published_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, nullable=False
    )


class ConsentRecord(UUIDPrimaryKey, Timestamps, db.Model):
    """One entry of the append-only, hash-chained consent ledger.

    `seq` numbers a user's records 1, 2, 3...; `prev_hash` is the previous
    record's `record_hash` (64 zeros for the first), so editing or removing a
    record breaks the chain; the user's ConsentHead pins the newest one.
    PostgreSQL refuses UPDATE, DELETE and TRUNCATE on this table (triggers from
    migrations 0003 and 0006) except DELETE inside `erase_consent_ledger()`.
    """

    __tablename__ = "consent_records"
    __table_args__ = (
        CheckConstraint(f"consent_type {_TYPE_CHECK}", name="consent_type"),
        CheckConstraint(f"jurisdiction {_JURISDICTION_CHECK}", name="jurisdiction"),
        CheckConstraint("seq >= 1", name="seq"),
        # One successor per record: concurrent appends cannot fork the chain.
        UniqueConstraint("user_id", "seq"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False
    )
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    consent_type: Mapped[str] = mapped_column(String(32), nullable=False)
    jurisdiction: Mapped[str] = mapped_column(String(16), nullable=False)
    locale: Mapped[str] = mapped_column(String(16), nullable=False)
    granted: Mapped[bool] = mapped_column(Boolean, nullable=False)
    # Exactly one of these is set: granted_at on a grant, withdrawn_at otherwise.
    granted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ip_address: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(256))
    document_version: Mapped[int] = mapped_column(Integer, nullable=False)
    document_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    record_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    # The ledger key the hash is an HMAC under (hash version 2); NULL: an unkeyed
    # SHA-256 written before revision 0006 (version 1).
    key_id: Mapped[str | None] = mapped_column(String(64))


class ConsentHead(db.Model):
    """Where a user's chain ends: the anchor that makes deleting its newest records visible.

    `mac` is an HMAC under a ledger key (LEDGER_KEYS, never in the database) over
    the user, `seq` and `record_hash` of the latest record, rewritten in the same
    transaction as every append. PostgreSQL lets it only move forward (trigger
    from migration 0006) and refuses TRUNCATE and DELETE outside account erasure.
    """

    __tablename__ = "consent_heads"

    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    record_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    key_id: Mapped[str] = mapped_column(String(64), nullable=False)
    mac: Mapped[str] = mapped_column(String(64), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, nullable=False
    )
