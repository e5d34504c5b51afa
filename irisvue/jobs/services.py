"""Reading jobs on behalf of their owner."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from irisvue.errors import APIError
from irisvue.extensions import db
from irisvue.models import Job


def get_user_job(item_id: uuid.UUID, identity: str) -> Job:
    """The job if `identity` owns it; anything else is 404 (never 403: no probing)."""
    try:
        owner = uuid.UUID(str(identity))
    except ValueError:
        owner = None
    job = None
    if owner is not None:
        job = db.session.scalar(select(Job).where(Job.id == item_id, Job.user_id == owner))
    if job is None:
        raise APIError(404, "not_found", "No such job.")
    return job
