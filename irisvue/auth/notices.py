"""Security notices: "your password/email changed" mailed to a fixed address.

The address is kept in a `security_notices` row (job args carry ids only, and
after an email change the old address exists nowhere else); the email job
sends it and deletes the row.
"""

from __future__ import annotations

import uuid

from irisvue.extensions import db
from irisvue.jobs import outbox
from irisvue.models import SecurityNotice

NOTICE_JOB = "email.security_notice"


def notify(user_id: uuid.UUID, event: str, address: str) -> None:
    """Queue a notice in the caller's transaction (commit with `outbox.commit()`)."""
    notice = SecurityNotice(id=uuid.uuid4(), user_id=user_id, event=event, address=address)
    db.session.add(notice)
    outbox.submit(NOTICE_JOB, user_id=user_id, args={"notice_id": str(notice.id)})
