from __future__ import annotations

import uuid

from sqlalchemy import CheckConstraint, ForeignKey, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from irisvue.extensions import db
from irisvue.models.base import Timestamps, UUIDPrimaryKey

SECURITY_NOTICE_EVENTS = ("password_changed", "email_changed", "email_added")


class SecurityNotice(UUIDPrimaryKey, Timestamps, db.Model):
    """A pending "your credentials changed" email to a fixed address.

    The address is kept here, not in the job's args (ids only): after an email
    change the old address is nowhere else. The row is deleted once sent and
    goes with its user.
    """

    __tablename__ = "security_notices"
    __table_args__ = (
        CheckConstraint(
            "event IN ('password_changed', 'email_changed', 'email_added')", name="event"
        ),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False
    )
    event: Mapped[str] = mapped_column(String(32), nullable=False)
    address: Mapped[str] = mapped_column(String(320), nullable=False)
