"""Privacy request records (received, due, completed) and the erasure rules."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import structlog
from flask import current_app
from sqlalchemy import delete, func, select, update

from irisvue.auth.apple_duties import revoke_for_erasure
from irisvue.captures.destruction import destroy_biometrics, shred_data_keys
from irisvue.consent.anchor import erase_ledger
from irisvue.errors import APIError
from irisvue.extensions import db
from irisvue.jobs.registry import JobError, PermanentJobError
from irisvue.models import (
    AuditEvent,
    Capture,
    ConsentRecord,
    EmailToken,
    ErasureTombstone,
    Job,
    PrivacyRequest,
    Session,
    User,
    UserKey,
)
from irisvue.models.base import as_utc, utcnow
from irisvue.storage import StorageError, get_storage

log = structlog.get_logger(__name__)

# The jurisdictions whose statutory deadline we track; anything else uses the default.
_DEADLINE_SETTINGS = {
    "gdpr": "PRIVACY_DEADLINE_DAYS_GDPR",
    "ccpa": "PRIVACY_DEADLINE_DAYS_CCPA",
}


def deadline_days(jurisdiction: str) -> int:
    """Days the law allows to answer a request (GDPR Art. 12(3): one month; CCPA: 45 days)."""
    setting = _DEADLINE_SETTINGS.get(jurisdiction, "PRIVACY_DEADLINE_DAYS_DEFAULT")
    return int(current_app.config[setting])


def _jurisdiction_of(user_id: uuid.UUID) -> str:
    """The jurisdiction of the user's latest consent record, or `generic`."""
    latest = db.session.scalar(
        select(ConsentRecord.jurisdiction)
        .where(ConsentRecord.user_id == user_id)
        .order_by(ConsentRecord.seq.desc())
        .limit(1)
    )
    return latest or "generic"


def open_request(
    user_id: uuid.UUID, kind: str, *, jurisdiction: str | None = None
) -> PrivacyRequest:
    """Adds a pending request to the session (the caller commits) with its legal due date."""
    jurisdiction = jurisdiction or _jurisdiction_of(user_id)
    received = utcnow()
    request = PrivacyRequest(
        user_id=user_id,
        kind=kind,
        jurisdiction=jurisdiction,
        received_at=received,
        due_at=received + timedelta(days=deadline_days(jurisdiction)),
        status="pending",
    )
    db.session.add(request)
    db.session.flush()
    return request


def complete_request(request: PrivacyRequest) -> None:
    """Marks the request completed (the caller commits); a second call keeps the first time."""
    if request.completed_at is None:
        request.completed_at = utcnow()
    request.status = "completed"


def pending_request(user_id: uuid.UUID, kind: str) -> PrivacyRequest | None:
    """The user's open request of this kind, if any (the most recent one)."""
    return db.session.scalar(
        select(PrivacyRequest)
        .where(
            PrivacyRequest.user_id == user_id,
            PrivacyRequest.kind == kind,
            PrivacyRequest.status == "pending",
        )
        .order_by(PrivacyRequest.received_at.desc())
        .limit(1)
    )


# --- Erasure ---------------------------------------------------------------------------

ERASURE = "erasure"
ERASE_JOB = "privacy.erase"
COUNT_KEYS = ("captures", "consents", "sessions", "objects")


def subject_hash(user_id: uuid.UUID) -> str:
    """HMAC-SHA256 of the user id under a key derived from SECRET_KEY (the tombstone's key)."""
    key = hmac.new(
        current_app.config["SECRET_KEY"].encode(), b"irisvue:erasure-subject", hashlib.sha256
    ).digest()
    return hmac.new(key, str(user_id).encode(), hashlib.sha256).hexdigest()


def erasure_status(receipt_id: str) -> dict[str, Any]:
    """The public receipt: state, times and totals; nothing that identifies anyone."""
    request = db.session.scalar(
        select(PrivacyRequest).where(
            PrivacyRequest.receipt_id == receipt_id, PrivacyRequest.kind == ERASURE
        )
    )
    if request is None:
        raise APIError(404, "erasure_not_found", "No erasure request has this receipt id.")
    return {
        "status": request.status,
        "requested_at": as_utc(request.received_at),
        "completed_at": as_utc(request.completed_at) if request.completed_at else None,
        "deleted": _counts(request),
        "apple_revoked": (request.counts or {}).get("apple_revoked"),
    }


def _counts(request: PrivacyRequest) -> dict[str, int]:
    stored = request.counts or {}
    return {key: int(stored.get(key, 0)) for key in COUNT_KEYS}


def _merge_counts(request: PrivacyRequest, counts: dict[str, Any]) -> None:
    """Set `counts` over what the request holds (the caller commits). A new dict:
    the JSON column sees an assignment, not a change made in place."""
    request.counts = {**(request.counts or {}), **counts}


def _row_count(model: Any, user_id: uuid.UUID) -> int:
    return db.session.scalar(
        select(func.count()).select_from(model).where(model.user_id == user_id)
    )


@contextlib.contextmanager
def _retried_when_storage_fails() -> Iterator[None]:
    try:
        yield
    except StorageError as exc:
        log.warning("erasure_storage_error", error=type(exc).__name__)
        raise JobError("storage_unavailable") from exc


def pause_for_tests(setting: str = "ERASURE_TEST_PAUSE_SECONDS") -> None:
    # Test-only: widens a window so a test can act there deterministically
    # (ERASURE_TEST_PAUSE_SECONDS: between crypto-shredding and deleting the rows;
    # EXPORT_TEST_PAUSE_SECONDS: before the export's archive is written).
    pause = float(current_app.config.get(setting) or 0)
    if pause > 0 and current_app.config["IRISVUE_ENV"] != "production":
        time.sleep(pause)


def erase_account(request_id: uuid.UUID, *, job_id: uuid.UUID | None = None) -> dict[str, int]:
    """Run one erasure to the end; returns what it deleted. Idempotent from any step.

    Order: the rows counted, the wrapped data key deleted (crypto-shredding),
    the objects under `users/<id>/` listed and counted, capture objects and
    rows, every other object, then in one transaction every row of the user,
    the tombstone and the request's completion. Totals live on the request
    and only grow (max), so a re-run after a crash, even one half-way through
    deleting objects, reports the same numbers as an uninterrupted run.
    """
    request = db.session.get(PrivacyRequest, request_id)
    if request is None or request.kind != ERASURE:
        raise PermanentJobError("privacy_request_missing")
    if request.status == "completed":
        return _counts(request)
    user_id = request.user_id
    if user_id is None:  # the user row is gone without our final step: nothing left to count
        complete_request(request)
        db.session.commit()
        return _counts(request)

    _revoke_apple(request, user_id)  # before the data key that seals Apple's token goes
    counts = _counts(request)
    counts["captures"] = max(counts["captures"], _row_count(Capture, user_id))
    counts["consents"] = max(counts["consents"], _row_count(ConsentRecord, user_id))
    counts["sessions"] = max(counts["sessions"], _row_count(Session, user_id))
    _merge_counts(request, counts)
    db.session.commit()

    shred_data_keys(user_id)  # first: every copy is unreadable from this commit on
    db.session.commit()
    # Objects are counted before any is deleted: a run that dies half-way through
    # the deletion leaves fewer to count, never a smaller recorded total.
    with _retried_when_storage_fails():
        stored = sum(1 for _ in get_storage().list_prefix(f"users/{user_id}/"))
    counts["objects"] = max(counts["objects"], stored)
    _merge_counts(request, counts)
    db.session.commit()

    destroyed = destroy_biometrics(user_id)  # capture objects and rows (key already gone)
    counts["captures"] = max(counts["captures"], destroyed["captures"])
    deleted = destroyed["objects"]
    counts["objects"] = max(counts["objects"], deleted)
    _merge_counts(request, counts)
    db.session.commit()
    pause_for_tests()

    with _retried_when_storage_fails():
        deleted += get_storage().delete_prefix(f"users/{user_id}/")
    counts["objects"] = max(counts["objects"], deleted)  # any stored after the listing
    _merge_counts(request, counts)
    db.session.commit()

    _delete_rows(user_id, job_id)
    if (
        db.session.scalar(
            select(ErasureTombstone.id).where(
                ErasureTombstone.subject_hash == subject_hash(user_id)
            )
        )
        is None
    ):
        db.session.add(
            ErasureTombstone(
                subject_hash=subject_hash(user_id),
                requested_at=request.received_at,
                completed_at=utcnow(),
                counts=dict(counts),
            )
        )
    complete_request(request)
    db.session.commit()
    log.info("account_erased", request_id=str(request_id), **counts)
    return counts


def _revoke_apple(request: PrivacyRequest, user_id: uuid.UUID) -> None:
    """Revoke the user's Apple tokens once (a re-run keeps the first outcome); never raises."""
    if "apple_revoked" in (request.counts or {}):
        return
    outcome = revoke_for_erasure(user_id)  # rolls back: `request` reloads when next read
    if outcome is not None:
        _merge_counts(request, {"apple_revoked": outcome})
        db.session.commit()


def _delete_rows(user_id: uuid.UUID, job_id: uuid.UUID | None) -> None:
    """Every row of the user, in the caller's transaction (consent ledger included)."""
    erase_ledger(user_id)  # records and head, through the ledger's own gate
    db.session.execute(delete(Session).where(Session.user_id == user_id))
    db.session.execute(delete(EmailToken).where(EmailToken.user_id == user_id))
    db.session.execute(delete(Capture).where(Capture.user_id == user_id))
    db.session.execute(delete(UserKey).where(UserKey.user_id == user_id))
    # Security events stay, anonymous: no account, no session to link them to.
    db.session.execute(
        update(AuditEvent)
        .where(AuditEvent.user_id == user_id)
        .values(user_id=None, session_id=None)
    )
    # Jobs stay as counters; what they carried about the user goes. The running
    # erasure keeps its args (a request id) so a retry can find its request.
    others = update(Job).where(Job.user_id == user_id)
    if job_id is not None:
        others = others.where(Job.id != job_id)
        db.session.execute(update(Job).where(Job.id == job_id).values(user_id=None))
    db.session.execute(others.values(user_id=None, args={}, result=None))
    # Other open requests (an export) cannot be served any more: close them.
    db.session.execute(
        update(PrivacyRequest)
        .where(PrivacyRequest.user_id == user_id, PrivacyRequest.status == "pending")
        .where(PrivacyRequest.kind != ERASURE)
        .values(status="completed", completed_at=utcnow())
    )
    db.session.execute(
        update(PrivacyRequest).where(PrivacyRequest.user_id == user_id).values(user_id=None)
    )
    db.session.execute(delete(User).where(User.id == user_id))


def open_requests() -> list[PrivacyRequest]:
    """Every request not completed yet, the nearest deadline first."""
    stmt = select(PrivacyRequest).where(PrivacyRequest.status == "pending")
    return list(db.session.scalars(stmt.order_by(PrivacyRequest.due_at)))
