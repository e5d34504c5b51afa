"""Reading jobs on behalf of their owner."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from irisvue.errors import APIError
from irisvue.extensions import db
from irisvue.models import Job


def get_user_job(item_id: uuid.UUID, user_id: uuid.UUID) -> Job:
    """The job if `user_id` owns it; anything else is 404 (never 403: no probing)."""
    job = db.session.scalar(select(Job).where(Job.id == item_id, Job.user_id == user_id))
    if job is None:
        raise APIError(404, "not_found", "No such job.")
    return job
