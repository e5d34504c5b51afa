"""How an erasure starts: asked by the user (re-authenticated), or by Apple.

Either way the account is disabled and every session revoked in the same
transaction that opens the request and submits the job, so no new session can
start while the job is pending. The job itself is `services.erase_account`.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import structlog

from irisvue.auth import sessions
from irisvue.auth.reauth import reauthenticate
from irisvue.errors import APIError
from irisvue.extensions import db
from irisvue.jobs import outbox
from irisvue.models import PrivacyRequest, Session, User
from irisvue.privacy.services import (
    COUNT_KEYS,
    ERASE_JOB,
    ERASURE,
    _row_count,
    open_request,
    pending_request,
)

log = structlog.get_logger(__name__)


def request_erasure(user: User, proof: dict[str, Any]) -> PrivacyRequest:
    """Re-authenticate (`irisvue.auth.reauth`: password or a fresh ID token), revoke
    every session, and queue the erasure job (one per user).

    The account is disabled in the same transaction, so no new session can
    start while the job is pending.
    """
    user_id = user.id
    reauthenticate(user, status=401, **proof)
    request = begin_erasure(user_id)
    if request is None:  # erased meanwhile by a concurrent request
        db.session.rollback()
        raise APIError(401, "invalid_credentials", "The account no longer exists.")
    outbox.commit()
    log.info("erasure_requested", request_id=str(request.id))
    return request


def begin_erasure(user_id: uuid.UUID) -> PrivacyRequest | None:
    """Disable the account, revoke its sessions, open the request and submit the job, in
    the caller's transaction (it commits with `outbox.commit()`)."""
    user = db.session.get(User, user_id, with_for_update=True, populate_existing=True)
    if user is None:
        return None
    user.is_active = False
    sessions.revoke_all(user_id, "account_erasure")
    request = pending_request(user_id, ERASURE)
    if request is None:
        request = open_request(user_id, ERASURE)
        request.receipt_id = secrets.token_urlsafe(24)
        # Counted now: the retention sweep may purge the revoked sessions before the job runs.
        request.counts = {**dict.fromkeys(COUNT_KEYS, 0), "sessions": _row_count(Session, user_id)}
        job = outbox.submit(ERASE_JOB, user_id=user_id, args={"request_id": str(request.id)})
        request.job_id = job.id
    return request


def on_account_deletion_requested(sender: Any, *, user_id: uuid.UUID) -> None:
    """`irisvue.auth.signals.account_deletion_requested`: Apple deleted the person's Apple
    Account and it was their only way in; erase as if they had asked."""
    request = begin_erasure(user_id)
    if request is not None:
        log.info("erasure_requested_by_provider", request_id=str(request.id))
