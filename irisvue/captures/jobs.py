"""Background work of the captures feature: destroying what a withdrawal covers."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from flask import Flask

from irisvue.captures.destruction import (
    destroy_biometrics,
    destroy_biometrics_until,
    shred_data_keys,
)
from irisvue.consent.services import BIOMETRIC
from irisvue.extensions import db
from irisvue.jobs import outbox
from irisvue.jobs.registry import PermanentJobError, job_handler
from irisvue.models import ConsentRecord, Job, User

log = structlog.get_logger(__name__)

DESTROY_JOB = "biometrics.destroy"
RECORD_ARG = "consent_record_id"  # the withdrawal a destruction job carries out


def on_biometric_consent_withdrawn(app: Flask, *, user_id: uuid.UUID, record: ConsentRecord) -> Job:
    """Crypto-shred now (old objects are unreadable from the commit on) and queue
    the job that deletes what this withdrawal covers, and only that: the user
    may consent again and upload before it runs. Runs in the withdrawal's
    transaction (consent.signals)."""
    shred_data_keys(user_id)
    return outbox.submit(DESTROY_JOB, user_id=user_id, args={RECORD_ARG: str(record.id)})


@job_handler(DESTROY_JOB, queue="default")
def destroy_biometrics_job(job: Job) -> dict[str, Any]:
    """A withdrawal (or refusal) of biometric_capture: destroy what it covers.

    The args name the withdrawal's consent record; what was uploaded after it,
    under a new grant, is kept. Jobs queued before the args carried the record
    destroy everything, as they did then. `job.user_id` is NULL when the account
    was erased meanwhile; erasure has destroyed everything then, and this is a
    no-op.
    """
    record_id = (job.args or {}).get(RECORD_ARG)
    if record_id is None:
        return destroy_biometrics(job.user_id)
    try:
        record_uuid = uuid.UUID(str(record_id))
    except ValueError:
        raise PermanentJobError("consent_record_invalid") from None
    return destroy_withdrawn_biometrics(job.user_id, record_uuid)


def destroy_withdrawn_biometrics(user_id: uuid.UUID | None, record_id: uuid.UUID) -> dict[str, int]:
    """Destroy what the withdrawal `record_id` covers: the user's biometric data
    from its time or before. Data uploaded under a later grant survives. Idempotent."""
    if user_id is None:  # the account was erased meanwhile, with everything in it
        return {"captures": 0, "objects": 0}
    record = db.session.get(ConsentRecord, record_id)
    if record is None and db.session.get(User, user_id) is None:
        return {"captures": 0, "objects": 0}  # erased since the job was loaded
    if (
        record is None
        or record.user_id != user_id
        or record.consent_type != BIOMETRIC
        or record.granted
    ):
        # Records are append-only and erased only with their user: never expected.
        log.error("biometrics_destroy_record_invalid", record_id=str(record_id))
        raise PermanentJobError("consent_record_invalid")
    cutoff = record.created_at
    db.session.rollback()
    return destroy_biometrics_until(user_id, cutoff)
