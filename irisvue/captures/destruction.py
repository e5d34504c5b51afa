"""Destroying a user's biometric data: crypto-shredding, capture objects and rows.

Two paths:
- `destroy_biometrics(user_id)` destroys everything (account erasure, the
  retention sweep, and withdrawal jobs queued before withdrawals named their
  consent record);
- `destroy_biometrics_until(user_id, cutoff)` destroys what one withdrawal
  covers: keys and captures created at or before the withdrawal, and orphan
  objects from then. What the user uploads after consenting again survives.

A withdrawal deletes the user's data key in its own transaction
(`shred_data_keys`), so old objects, backups included, are unreadable before
any job runs, and an upload still in flight under the old key is refused at
commit (`services._finalise`: the key id changed). A capture row is never
newer than the key that encrypted it, so a capture older than the user's
current key was encrypted under a shredded one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from itertools import islice

import structlog
from sqlalchemy import delete, select

from irisvue.captures.services import user_prefix
from irisvue.extensions import db
from irisvue.jobs.registry import JobError
from irisvue.models import Capture, UserKey
from irisvue.models.base import as_utc
from irisvue.storage import ObjectInfo, StorageError, get_storage

log = structlog.get_logger(__name__)

BATCH = 500
# An object without a row may be an upload under the current key that has not
# committed yet. While the user has a key, only objects clearly older than the
# withdrawal are taken for orphans: S3 reports whole seconds and its clock is
# not ours. Younger ones were encrypted under the shredded key, if at all, and
# are unreadable; the upload that wrote them deletes them when it is refused.
ORPHAN_MARGIN = timedelta(minutes=5)


def _zero() -> dict[str, int]:
    return {"captures": 0, "objects": 0}


def shred_data_keys(user_id: uuid.UUID, *, created_until: datetime | None = None) -> int:
    """Delete the user's wrapped data key rows in the current transaction (no commit).

    Every object encrypted under them, backups included, is unreadable from
    the commit on. `created_until` spares keys created after it.
    """
    stmt = delete(UserKey).where(UserKey.user_id == user_id)
    if created_until is not None:
        stmt = stmt.where(UserKey.created_at <= created_until)
    return db.session.execute(stmt).rowcount or 0  # type: ignore[attr-defined]


def destroy_biometrics(user_id: uuid.UUID | None) -> dict[str, int]:
    """Destroy every biometric object of the user: key, objects, rows. Idempotent.

    The wrapped key goes first and is committed at once: from then on every
    copy of the user's objects (backups included) is unreadable, even if
    deleting the objects fails now and the job has to run again.
    """
    if user_id is None:  # the account was erased meanwhile, with everything in it
        return _zero()
    shred_data_keys(user_id)
    db.session.commit()
    try:
        objects = get_storage().delete_prefix(user_prefix(user_id))
    except StorageError as exc:
        log.warning("biometrics_destroy_storage_error", error=type(exc).__name__)
        raise JobError("storage_unavailable") from exc
    result = db.session.execute(delete(Capture).where(Capture.user_id == user_id))
    db.session.commit()
    captures = result.rowcount or 0  # type: ignore[attr-defined]
    # Counts only: this runs for erasure and the retention sweep, which log no identities.
    log.info("biometrics_destroyed", captures=captures, objects=objects)
    return {"captures": captures, "objects": objects}


def destroy_biometrics_until(user_id: uuid.UUID | None, cutoff: datetime) -> dict[str, int]:
    """Destroy the keys, captures and orphan objects of the user dating from `cutoff`
    (a withdrawal's timestamp) or before; later ones are untouched. Idempotent.

    Each capture's object goes before its row, so a run interrupted halfway
    finds the rest on the next attempt.
    """
    if user_id is None:
        return _zero()
    cutoff = as_utc(cutoff)
    shred_data_keys(user_id, created_until=cutoff)  # done by the withdrawal; kept for safety
    db.session.commit()
    captures = objects = 0
    try:
        while batch := _captures_until(user_id, cutoff):
            for key in (key for _, key in batch):
                get_storage().delete(key)
            objects += len(batch)
            ids = [capture_id for capture_id, _ in batch]
            result = db.session.execute(delete(Capture).where(Capture.id.in_(ids)))
            db.session.commit()
            captures += result.rowcount or 0  # type: ignore[attr-defined]
        objects += _delete_orphans(user_id, cutoff)
    except StorageError as exc:
        db.session.rollback()
        log.warning("biometrics_destroy_storage_error", error=type(exc).__name__)
        raise JobError("storage_unavailable") from exc
    log.info("biometrics_destroyed", captures=captures, objects=objects, scope="withdrawal")
    return {"captures": captures, "objects": objects}


def _captures_until(user_id: uuid.UUID, cutoff: datetime) -> list[tuple[uuid.UUID, str]]:
    rows = db.session.execute(
        select(Capture.id, Capture.object_key)
        .where(Capture.user_id == user_id, Capture.created_at <= cutoff)
        .order_by(Capture.created_at, Capture.id)
        .limit(BATCH)
    ).all()
    db.session.rollback()  # no transaction held while the objects are deleted
    return [(capture_id, key) for capture_id, key in rows]


def _chunks(items: Iterable[ObjectInfo], size: int) -> Iterator[list[ObjectInfo]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _delete_orphans(user_id: uuid.UUID, cutoff: datetime) -> int:
    """Delete objects under the user's prefix that no capture row names and that
    cannot belong to an upload under a key newer than `cutoff`."""
    storage = get_storage()
    deleted = 0
    for listed in _chunks(storage.list_prefix(user_prefix(user_id)), BATCH):
        # Read after the listing: an object listed was written under a key that
        # existed before these queries, so it is found here unless shredded.
        keys = [info.key for info in listed]
        named = set(
            db.session.scalars(select(Capture.object_key).where(Capture.object_key.in_(keys)))
        )
        has_key = db.session.scalar(select(UserKey.id).where(UserKey.user_id == user_id).limit(1))
        db.session.rollback()
        for info in listed:
            if info.key in named:
                continue  # a live capture, or one a later withdrawal's job destroys
            if has_key is not None and not _clearly_before(info.last_modified, cutoff):
                continue  # may be an upload under the current key, not committed yet
            storage.delete(info.key)
            deleted += 1
    return deleted


def _clearly_before(last_modified: datetime | None, cutoff: datetime) -> bool:
    return last_modified is not None and as_utc(last_modified) < cutoff - ORPHAN_MARGIN
