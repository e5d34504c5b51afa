"""Background work of the consent feature (listed in jobs.registry.HANDLER_MODULES)."""

from __future__ import annotations

from typing import Any

from irisvue.consent.services import destroy_biometrics
from irisvue.jobs.registry import job_handler
from irisvue.models import Job


@job_handler("biometrics.destroy", queue="default")
def destroy_biometrics_job(job: Job) -> dict[str, Any]:
    """Withdrawal of biometric_capture: destroy every biometric object of the user.

    `job.user_id` is NULL when the account was erased meanwhile; erasure has
    destroyed everything then, and this is a no-op.
    """
    return destroy_biometrics(job.user_id)
