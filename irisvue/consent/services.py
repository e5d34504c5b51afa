"""The consent ledger: append, withdraw, current state and history (verification,
the head anchor and erasure live in irisvue.consent.anchor).

Records are only ever inserted. Appends for one user are serialised by a lock
on the user's row (PostgreSQL), with the unique (user_id, seq) constraint as
the backstop that turns a lost race into a retry instead of a forked chain.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import structlog
from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from irisvue.consent.anchor import advance_head
from irisvue.consent.chain import GENESIS_HASH, compute_hash
from irisvue.consent.documents import DEFAULT_LOCALE, current_document
from irisvue.consent.keys import current_keys
from irisvue.consent.signals import biometric_consent_withdrawn
from irisvue.errors import APIError
from irisvue.extensions import db
from irisvue.jobs import outbox
from irisvue.models import ConsentRecord, Job, User
from irisvue.models.base import utcnow
from irisvue.models.consent import CONSENT_TYPES

log = structlog.get_logger(__name__)

BIOMETRIC = "biometric_capture"
USER_AGENT_MAX = 256
IP_MAX = 45
APPEND_ATTEMPTS = 3


@dataclass(frozen=True)
class _Entry:
    """What a new record says; the chain fields are added under the user's lock."""

    consent_type: str
    jurisdiction: str
    locale: str
    granted: bool
    document_version: int
    document_sha256: str
    ip_address: str | None
    user_agent: str | None


@dataclass
class ConsentReceipt:
    """A freshly appended record, and the destruction job it queued, if any."""

    record: ConsentRecord
    job: Job | None = None


def _lock_user(user_id: uuid.UUID) -> User:
    # FOR NO KEY UPDATE: serialises this user's appends without blocking
    # inserts elsewhere that merely reference the user (FK checks take KEY SHARE).
    user = db.session.scalars(
        select(User).where(User.id == user_id).with_for_update(key_share=True)
    ).one_or_none()
    if user is None:
        raise APIError(401, "token_invalid", "The token's account no longer exists.")
    if not user.is_active:
        raise APIError(401, "account_disabled", "The account is disabled.")
    return user


def _latest(user_id: uuid.UUID, consent_type: str | None = None) -> ConsentRecord | None:
    stmt = select(ConsentRecord).where(ConsentRecord.user_id == user_id)
    if consent_type:
        stmt = stmt.where(ConsentRecord.consent_type == consent_type)
    return db.session.scalars(stmt.order_by(ConsentRecord.seq.desc()).limit(1)).first()


def _append(user_id: uuid.UUID, entry: _Entry) -> ConsentRecord:
    """Links a new record to the user's chain and flushes it (no commit)."""
    _lock_user(user_id)
    head = _latest(user_id)
    now = utcnow()
    record = ConsentRecord(
        id=uuid.uuid4(),
        user_id=user_id,
        seq=head.seq + 1 if head else 1,
        consent_type=entry.consent_type,
        jurisdiction=entry.jurisdiction,
        locale=entry.locale,
        granted=entry.granted,
        created_at=now,
        granted_at=now if entry.granted else None,
        withdrawn_at=None if entry.granted else now,
        ip_address=(entry.ip_address or None) and entry.ip_address[:IP_MAX],
        user_agent=(entry.user_agent or None) and entry.user_agent[:USER_AGENT_MAX],
        document_version=entry.document_version,
        document_sha256=entry.document_sha256,
        prev_hash=head.record_hash if head else GENESIS_HASH,
    )
    key_id, keys = current_keys()
    record.key_id = key_id
    record.record_hash = compute_hash(record, keys[key_id])
    db.session.add(record)
    db.session.flush()
    advance_head(record)
    return record


def _append_and_commit(user_id: uuid.UUID, entry: _Entry) -> ConsentReceipt:
    """Appends (retrying a lost seq race) and commits, shredding the data key and
    queueing destruction with a biometric withdrawal in the same transaction."""
    for attempt in range(1, APPEND_ATTEMPTS + 1):
        try:
            record = _append(user_id, entry)
        except IntegrityError:
            # Only possible without row locks (SQLite): another append took this seq.
            db.session.rollback()
            if attempt == APPEND_ATTEMPTS:
                raise
            continue
        job = None
        if record.consent_type == BIOMETRIC and not record.granted:
            job = _announce_withdrawal(user_id, record)
        outbox.commit()
        log.info(
            "consent_recorded",
            record_id=str(record.id),
            consent_type=record.consent_type,
            granted=record.granted,
            job_id=str(job.id) if job else None,
        )
        return ConsentReceipt(record=record, job=job)
    raise AssertionError("unreachable")


def _announce_withdrawal(user_id: uuid.UUID, record: ConsentRecord) -> Job | None:
    """Tell the features holding biometric data (captures destroys it) inside
    this transaction; the job a receiver queued, if any, goes on the receipt."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    results = biometric_consent_withdrawn.send(app, user_id=user_id, record=record)
    jobs = [job for _receiver, job in results if isinstance(job, Job)]
    return jobs[0] if jobs else None


def record_consent(
    user_id: uuid.UUID,
    *,
    consent_type: str,
    jurisdiction: str,
    granted: bool,
    document_version: int,
    locale: str = DEFAULT_LOCALE,
    ip_address: str | None = None,
    user_agent: str | None = None,
) -> ConsentReceipt:
    """Appends a grant or refusal of the *current* text of (type, jurisdiction, locale)."""
    document = current_document(consent_type, jurisdiction, locale)
    if document is None:
        raise APIError(
            422,
            "unknown_document",
            f"No consent text is published for {consent_type}/{jurisdiction}/{locale}.",
        )
    if document_version != document.version:
        raise APIError(
            409,
            "stale_document",
            f"Version {document_version} is not the current text; the current version is "
            f"{document.version}. Show the current text and ask again.",
            errors={"document_version": [f"current version is {document.version}"]},
        )
    entry = _Entry(
        consent_type,
        jurisdiction,
        locale,
        granted,
        document.version,
        document.sha256,
        ip_address,
        user_agent,
    )
    return _append_and_commit(user_id, entry)


def withdraw_consent(
    user_id: uuid.UUID,
    consent_type: str,
    *,
    jurisdiction: str | None = None,
    ip_address: str | None = None,
    user_agent: str | None = None,
) -> ConsentReceipt:
    """Appends a withdrawal. The jurisdiction (and locale) default to those of the
    user's latest record of this type; the record pins the current text, or the
    withdrawn one when no text is published any more (withdrawing always works)."""
    previous = _latest(user_id, consent_type)
    if jurisdiction is None:
        if previous is None:
            raise APIError(
                422,
                "validation_error",
                "There is no earlier consent to infer the jurisdiction from.",
                errors={"jurisdiction": ["Missing data for required field."]},
            )
        jurisdiction = previous.jurisdiction
    locale = previous.locale if previous else DEFAULT_LOCALE
    document = current_document(consent_type, jurisdiction, locale)
    if document is not None:
        version, sha256 = document.version, document.sha256
    elif previous is not None and previous.jurisdiction == jurisdiction:
        version, sha256 = previous.document_version, previous.document_sha256
    else:
        raise APIError(
            422,
            "unknown_document",
            f"No consent text is published for {consent_type}/{jurisdiction}/{locale}.",
        )
    entry = _Entry(
        consent_type, jurisdiction, locale, False, version, sha256, ip_address, user_agent
    )
    return _append_and_commit(user_id, entry)


def current_state(user_id: uuid.UUID) -> list[dict[str, object]]:
    """One entry per consent type: the latest record wins; never asked → not granted."""
    latest_seq = (
        select(func.max(ConsentRecord.seq))
        .where(ConsentRecord.user_id == user_id)
        .group_by(ConsentRecord.consent_type)
    )
    records = {
        r.consent_type: r
        for r in db.session.scalars(
            select(ConsentRecord).where(
                ConsentRecord.user_id == user_id, ConsentRecord.seq.in_(latest_seq)
            )
        )
    }
    return [
        {"consent_type": t, "granted": bool(r and r.granted), "record": r}
        for t in CONSENT_TYPES
        for r in [records.get(t)]
    ]


def has_live_consent(user_id: uuid.UUID, consent_type: str = BIOMETRIC) -> bool:
    """For other features (captures): is the user's latest record a grant?"""
    latest = _latest(user_id, consent_type)
    return bool(latest and latest.granted)


def history(
    user_id: uuid.UUID, *, limit: int, after_seq: int = 0
) -> tuple[list[ConsentRecord], int | None]:
    """A page of the user's records, oldest first, and the seq the next page starts after."""
    rows = list(
        db.session.scalars(
            select(ConsentRecord)
            .where(ConsentRecord.user_id == user_id, ConsentRecord.seq > after_seq)
            .order_by(ConsentRecord.seq)
            .limit(limit + 1)
        )
    )
    page = rows[:limit]
    return page, page[-1].seq if len(rows) > limit else None
