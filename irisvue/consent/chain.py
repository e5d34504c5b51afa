"""The ledger's hash chain: canonical serialisation, hashing and verification.

record_hash = SHA-256 over the canonical JSON of every field of the record
(except record_hash itself) including prev_hash, the previous record's hash.
Changing any field, removing or reordering a record therefore breaks the chain
from that point on. Changing the serialisation is a new HASH_VERSION: old
records keep verifying under the version they were written with.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from irisvue.models.consent import ConsentRecord

GENESIS_HASH = "0" * 64
HASH_VERSION = 1


def _timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite hands back naive datetimes; we only store UTC
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_bytes(record: ConsentRecord) -> bytes:
    """The exact bytes hashed for a record: sorted keys, no whitespace, UTF-8."""
    fields: dict[str, Any] = {
        "v": HASH_VERSION,
        "id": str(record.id),
        "user_id": str(record.user_id),
        "seq": record.seq,
        "consent_type": record.consent_type,
        "jurisdiction": record.jurisdiction,
        "locale": record.locale,
        "granted": record.granted,
        "created_at": _timestamp(record.created_at),
        "granted_at": _timestamp(record.granted_at),
        "withdrawn_at": _timestamp(record.withdrawn_at),
        "ip_address": record.ip_address,
        "user_agent": record.user_agent,
        "document_version": record.document_version,
        "document_sha256": record.document_sha256,
        "prev_hash": record.prev_hash,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def compute_hash(record: ConsentRecord) -> str:
    return hashlib.sha256(canonical_bytes(record)).hexdigest()


@dataclass(frozen=True)
class ChainReport:
    """Outcome of walking one user's chain, oldest record first."""

    intact: bool
    checked: int
    head_hash: str | None = None
    broken_at_seq: int | None = None
    broken_record_id: str | None = None
    # seq_gap: a record is missing; prev_hash_mismatch: a link was rewritten;
    # hash_mismatch: the record's own fields were altered.
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def verify_chain(records: Iterable[ConsentRecord]) -> ChainReport:
    """Checks sequence, links and hashes; `records` must be ordered by seq."""
    expected_prev = GENESIS_HASH
    expected_seq = 1
    count = 0
    for record in records:
        count += 1
        reason = None
        if record.seq != expected_seq:
            reason = "seq_gap"
        elif record.prev_hash != expected_prev:
            reason = "prev_hash_mismatch"
        elif compute_hash(record) != record.record_hash:
            reason = "hash_mismatch"
        if reason:
            return ChainReport(
                intact=False,
                checked=count,
                broken_at_seq=record.seq,
                broken_record_id=str(record.id),
                reason=reason,
            )
        expected_prev = record.record_hash
        expected_seq += 1
    return ChainReport(intact=True, checked=count, head_hash=expected_prev if count else None)
