"""The ledger's hash chain: canonical serialisation, keyed hashing, head anchor, verification.

record_hash covers the canonical JSON of every field of the record (except
record_hash itself) including prev_hash, the previous record's hash, so
changing any field, removing or reordering a record breaks the chain from that
point on. Two hash versions exist, told apart by `key_id`:

* version 1 (key_id NULL, written before revision 0006): plain SHA-256;
* version 2 (key_id set): HMAC-SHA256 under the ledger key of that id, with
  the version and key id inside the hashed bytes. Without the key nobody can
  recompute a chain after rewriting it.

The chain's end is pinned outside it by the user's head (ConsentHead): an
HMAC over (user, seq, record_hash) of the newest record, so deleting the
newest records is seen too. A version 1 record after a version 2 one is never
valid (a downgrade to unkeyed hashes is a rewrite).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from irisvue.models.consent import ConsentHead, ConsentRecord

GENESIS_HASH = "0" * 64
_HEAD_DOMAIN = b"irisvue:consent-head:v1\x00"

# Why a chain is broken (ChainReport.reason; the API's ChainBreakReason):
SEQ_GAP = "seq_gap"  # a record is missing
PREV_HASH_MISMATCH = "prev_hash_mismatch"  # a link was rewritten
HASH_MISMATCH = "hash_mismatch"  # the record's own fields (or its hash) were altered
UNKNOWN_KEY = "unknown_key"  # the record names a ledger key this server does not hold
# The chain does not end where its anchored head says (newest records deleted,
# or the head itself forged or missing).
HEAD_MISMATCH = "head_mismatch"
CHAIN_BREAK_REASONS = (SEQ_GAP, PREV_HASH_MISMATCH, HASH_MISMATCH, UNKNOWN_KEY, HEAD_MISMATCH)


def _timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite hands back naive datetimes; we only store UTC
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_bytes(record: ConsentRecord) -> bytes:
    """The exact bytes hashed for a record: sorted keys, no whitespace, UTF-8."""
    fields: dict[str, Any] = {
        "v": 2 if record.key_id else 1,
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
    if record.key_id:
        fields["key_id"] = record.key_id
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def compute_hash(record: ConsentRecord, key: bytes | None = None) -> str:
    """Version 2 (HMAC under `key`) when the record names a key id, else version 1."""
    if record.key_id:
        if key is None:
            raise ValueError("a keyed record needs its ledger key")
        return hmac.new(key, canonical_bytes(record), hashlib.sha256).hexdigest()
    return hashlib.sha256(canonical_bytes(record)).hexdigest()


def head_mac(key: bytes, user_id: object, seq: int, record_hash: str, key_id: str) -> str:
    message = json.dumps(
        {"user_id": str(user_id), "seq": seq, "record_hash": record_hash, "key_id": key_id},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    return hmac.new(key, _HEAD_DOMAIN + message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ChainReport:
    """Outcome of walking one user's chain, oldest record first."""

    intact: bool
    checked: int
    head_hash: str | None = None
    broken_at_seq: int | None = None
    broken_record_id: str | None = None
    reason: str | None = None  # one of CHAIN_BREAK_REASONS

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _record_break(
    record: ConsentRecord,
    expected_seq: int,
    expected_prev: str,
    keyed_before: bool,
    keys: Mapping[str, bytes],
) -> str | None:
    if record.seq != expected_seq:
        return SEQ_GAP
    if record.prev_hash != expected_prev:
        return PREV_HASH_MISMATCH
    if record.key_id is None:
        if keyed_before:
            return HASH_MISMATCH
        return None if compute_hash(record) == record.record_hash else HASH_MISMATCH
    key = keys.get(record.key_id)
    if key is None:
        return UNKNOWN_KEY
    if hmac.compare_digest(compute_hash(record, key), record.record_hash):
        return None
    return HASH_MISMATCH


def head_is_valid(head: ConsentHead, keys: Mapping[str, bytes]) -> bool:
    key = keys.get(head.key_id)
    if key is None:
        return False
    expected = head_mac(key, head.user_id, head.seq, head.record_hash, head.key_id)
    return hmac.compare_digest(expected, head.mac)


def verify_chain(
    records: Iterable[ConsentRecord],
    keys: Mapping[str, bytes],
    head: ConsentHead | None,
) -> ChainReport:
    """Checks sequence, links, hashes and the anchored head; `records` ordered by seq."""
    expected_prev = GENESIS_HASH
    expected_seq = 1
    count = 0
    keyed = False
    last: ConsentRecord | None = None
    for record in records:
        count += 1
        reason = _record_break(record, expected_seq, expected_prev, keyed, keys)
        if reason:
            return ChainReport(
                intact=False,
                checked=count,
                broken_at_seq=record.seq,
                broken_record_id=str(record.id),
                reason=reason,
            )
        keyed = keyed or record.key_id is not None
        expected_prev = record.record_hash
        expected_seq += 1
        last = record
    anchored = head is not None and head_is_valid(head, keys)
    if last is None:
        # Nothing to anchor; a head without records means they were all deleted.
        intact = head is None
    else:
        intact = (
            anchored
            and head is not None
            and (head.seq, head.record_hash) == (last.seq, last.record_hash)
        )
    if not intact:
        return ChainReport(
            intact=False,
            checked=count,
            broken_at_seq=expected_seq,  # where the missing (or forged) head is
            reason=HEAD_MISMATCH,
        )
    return ChainReport(intact=True, checked=count, head_hash=expected_prev if count else None)
