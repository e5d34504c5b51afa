"""Background work of the privacy feature (listed in jobs.registry.HANDLER_MODULES)."""

from __future__ import annotations

import uuid
from typing import Any

from irisvue.jobs.registry import PermanentJobError, job_handler
from irisvue.models import Job
from irisvue.privacy.services import ERASE_JOB, erase_account


@job_handler(ERASE_JOB, queue="default", timeout=1800)
def erase_account_job(job: Job) -> dict[str, Any]:
    """Account erasure: crypto-shred, delete every object and row, leave a tombstone."""
    try:
        request_id = uuid.UUID(str(job.args["request_id"]))
    except (KeyError, ValueError):
        raise PermanentJobError("privacy_request_missing") from None
    return erase_account(request_id, job_id=job.id)
