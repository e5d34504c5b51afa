from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from irisvue.extensions import db
from irisvue.models.base import JSONType, Timestamps, UUIDPrimaryKey

JOB_STATUSES = ("queued", "started", "finished", "failed")
JOB_FINAL_STATUSES = ("finished", "failed")


class Job(UUIDPrimaryKey, Timestamps, db.Model):
    """A unit of background work, and the transactional outbox that feeds RQ.

    A row is written in the same transaction as the change that caused it;
    `dispatched_at` stays NULL until RQ has accepted it, so the relay can find
    and re-send anything lost between commit and enqueue.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(
            "status IN ('queued', 'started', 'finished', 'failed')",
            name="status",
        ),
        CheckConstraint("progress >= 0 AND progress <= 100", name="progress"),
    )

    kind: Mapped[str] = mapped_column(String(64), nullable=False)
    queue: Mapped[str] = mapped_column(String(32), nullable=False)
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    # Indexed for the relay's sweep of unfinished jobs (few among many finished).
    status: Mapped[str] = mapped_column(String(16), default="queued", nullable=False, index=True)
    progress: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    # Ids and enum-like values only: never emails, tokens or image bytes.
    args: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, nullable=False)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
