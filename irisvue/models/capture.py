from __future__ import annotations

import uuid

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from irisvue.extensions import db
from irisvue.models.base import Timestamps, UUIDPrimaryKey

CAPTURE_CONTENT_TYPES = ("image/jpeg", "image/png")


class Capture(UUIDPrimaryKey, Timestamps, db.Model):
    """An encrypted iris photograph: the row is metadata, the bytes live in storage.

    `size` and `sha256` describe the stored plaintext (metadata already
    stripped); the object at `object_key` is its ciphertext under the user's
    data key, with the object key as associated data.
    """

    __tablename__ = "captures"
    __table_args__ = (
        CheckConstraint("content_type IN ('image/jpeg', 'image/png')", name="content_type"),
        CheckConstraint("size >= 0", name="size"),
        # The listing's keyset pagination: newest first within one user.
        Index("ix_captures_user_id_created_at", "user_id", "created_at", "id"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    object_key: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    content_type: Mapped[str] = mapped_column(String(32), nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
