"""The ledger's anchors outside the chain: the keyed head, verification, erasure.

Every append rewrites the user's head (seq, hash and HMAC of the newest record)
in the same transaction, so verification sees deleted newest records. The
only way to delete records is `erase_ledger`, which on PostgreSQL calls
`erase_consent_ledger(user)`: a SECURITY DEFINER function owned by the
`irisvue_ledger` role (migration 0006) that deletes only that user's records and
head, and only while the user has a pending erasure request. The table
triggers let a DELETE through only when it runs as that role, which ordinary
sessions of the application's role cannot become.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import structlog
from sqlalchemy import delete, select, text

from irisvue.consent.chain import ChainReport, head_mac, verify_chain
from irisvue.consent.keys import current_keys
from irisvue.extensions import db
from irisvue.models import ConsentHead, ConsentRecord
from irisvue.models.base import utcnow

log = structlog.get_logger(__name__)

_ERASE = text("SELECT erase_consent_ledger(:user_id)")


def advance_head(record: ConsentRecord) -> None:
    """Pin `record` (just appended, flushed, under the user's lock) as the chain's end.

    Only a head that anchors the record's predecessor moves (or, for the first
    record, none exists yet). Otherwise records or the head were deleted behind the
    ledger's back: the head stays as it is, so verification keeps reporting the break
    instead of a fresh head laundering it; the consent itself is still recorded.
    """
    head = db.session.get(ConsentHead, record.user_id)
    if record.seq == 1:
        anchors_previous = head is None
    else:
        anchors_previous = head is not None and (head.seq, head.record_hash) == (
            record.seq - 1,
            record.prev_hash,
        )
    if not anchors_previous:
        log.error("consent_head_not_advanced", seq=record.seq)
        return
    _anchor(record, head)


def pin_head(record: ConsentRecord) -> None:
    """Anchor `record` as the chain's end, whatever the head said (as migration 0006
    anchored existing chains); appends go through `advance_head`."""
    _anchor(record, db.session.get(ConsentHead, record.user_id))


def _anchor(record: ConsentRecord, head: ConsentHead | None) -> None:
    """Point `head` (None: a new one) at `record`, MACed under the current ledger key."""
    key_id, keys = current_keys()
    mac = head_mac(keys[key_id], record.user_id, record.seq, record.record_hash, key_id)
    if head is None:
        head = ConsentHead(user_id=record.user_id)
        db.session.add(head)
    head.seq, head.record_hash, head.key_id, head.mac = record.seq, record.record_hash, key_id, mac
    head.updated_at = utcnow()
    db.session.flush()


def _chain(user_id: uuid.UUID) -> Iterator[ConsentRecord]:
    stmt = (
        select(ConsentRecord)
        .where(ConsentRecord.user_id == user_id)
        .order_by(ConsentRecord.seq)
        .execution_options(yield_per=500)
    )
    yield from db.session.scalars(stmt)


def verify(user_id: uuid.UUID) -> ChainReport:
    """Walks the user's whole chain (not one page) and its head; reports the first break."""
    _, keys = current_keys()
    head = db.session.get(ConsentHead, user_id, populate_existing=True)
    report = verify_chain(_chain(user_id), keys, head)
    if not report.intact:
        log.warning(
            "consent_chain_broken",
            user_id=str(user_id),
            seq=report.broken_at_seq,
            reason=report.reason,
        )
    return report


def erase_ledger(user_id: uuid.UUID) -> int:
    """Deletes the user's records and head in the caller's transaction (account erasure).

    PostgreSQL: only through `erase_consent_ledger()`, which refuses unless an
    erasure request of this user is pending. Returns the records deleted.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        return int(db.session.execute(_ERASE, {"user_id": user_id}).scalar_one())
    db.session.execute(delete(ConsentHead).where(ConsentHead.user_id == user_id))
    deleted = db.session.execute(delete(ConsentRecord).where(ConsentRecord.user_id == user_id))
    return deleted.rowcount or 0
