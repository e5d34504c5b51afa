from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from irisvue.extensions import db
from irisvue.models.base import JSONType, UUIDPrimaryKey, utcnow

PRIVACY_REQUEST_KINDS = ("export", "erasure")
PRIVACY_REQUEST_STATUSES = ("pending", "completed")


class PrivacyRequest(UUIDPrimaryKey, db.Model):
    """A data-subject request (export or erasure) and its legal deadline.

    The row outlives the user (`user_id` becomes NULL) so an erasure's receipt
    stays answerable and the register of requests stays complete.
    """

    __tablename__ = "privacy_requests"
    __table_args__ = (
        CheckConstraint("kind IN ('export', 'erasure')", name="kind"),
        CheckConstraint("status IN ('pending', 'completed')", name="status"),
    )

    user_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    jurisdiction: Mapped[str] = mapped_column(String(16), nullable=False)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, nullable=False
    )
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default="pending", nullable=False, index=True)
    # No FK: the job row may be pruned independently of the register.
    job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # Erasure only: the unguessable id of the public status page.
    receipt_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Erasure only: what the job deleted, kept here so a re-run reports the same totals.
    counts: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class ErasureTombstone(UUIDPrimaryKey, db.Model):
    """Proof that an account was erased, without identifying it.

    `subject_hash` is an HMAC of the user id under a key derived from
    SECRET_KEY: whoever holds the id and the key can confirm the erasure,
    nobody can recover the id from the row.
    """

    __tablename__ = "erasure_tombstones"

    subject_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    completed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    counts: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, nullable=False)
