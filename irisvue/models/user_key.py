from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from irisvue.extensions import db
from irisvue.models.base import Timestamps, UUIDPrimaryKey


class UserKey(UUIDPrimaryKey, Timestamps, db.Model):
    """A user's data key, stored only wrapped by a master key (envelope encryption).

    Deleting the row crypto-shreds every object encrypted under the key,
    including copies in backups of the object store.
    """

    __tablename__ = "user_keys"

    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), unique=True, nullable=False
    )
    # Which MASTER_KEYS entry wrapped it; `flask keys rewrap` moves it to the primary.
    master_key_id: Mapped[str] = mapped_column(String(64), nullable=False)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    rotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
