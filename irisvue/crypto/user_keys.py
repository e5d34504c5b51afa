"""Users' data keys: created on first upload, stored only wrapped, rotated by `rewrap_all`.

The master keyring is built once per app from MASTER_KEYS (when the captures
blueprint is registered, so a bad key fails at start-up) and kept in
`app.extensions`. Every feature that encrypts something of a user's (captures,
exports, the Apple refresh token of auth) uses `load_data_key` /
`get_or_create_data_key`: one data key per user, so deleting it shreds them all.
`seal` / `unseal` encrypt a small secret (bytes) under it.
"""

from __future__ import annotations

import io
import threading
import uuid
from dataclasses import dataclass

import structlog
from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from irisvue.crypto.keys import (
    CryptoError,
    DataKey,
    MasterKeyring,
    WrappedKey,
    generate_data_key,
)
from irisvue.crypto.streams import iter_decrypted, iter_encrypted
from irisvue.extensions import db
from irisvue.models import UserKey
from irisvue.models.base import utcnow

log = structlog.get_logger(__name__)

KEYRING_EXTENSION = "irisvue.keyring"
_lock = threading.Lock()


def init_keyring(app: Flask) -> MasterKeyring:
    """Parse MASTER_KEYS once for `app` (raises ConfigError on a bad key)."""
    keyring = MasterKeyring.from_config(app.config["MASTER_KEYS"])
    app.extensions[KEYRING_EXTENSION] = keyring
    return keyring


def get_keyring() -> MasterKeyring:
    """The current app's master keyring."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    keyring = app.extensions.get(KEYRING_EXTENSION)
    if keyring is None:
        with _lock:
            keyring = app.extensions.get(KEYRING_EXTENSION) or init_keyring(app)
    return keyring


def _wrapped(row: UserKey) -> WrappedKey:
    return WrappedKey(row.master_key_id, bytes(row.wrapped_key))


def find_user_key(user_id: uuid.UUID) -> UserKey | None:
    return db.session.scalars(select(UserKey).where(UserKey.user_id == user_id)).one_or_none()


def unwrap(row: UserKey) -> DataKey:
    """The plaintext data key of a row; UnknownMasterKeyError / UnwrapError."""
    return get_keyring().unwrap(_wrapped(row), row.user_id)


def load_data_key(user_id: uuid.UUID) -> DataKey | None:
    """The user's data key, or None when they have none (never uploaded, or shredded)."""
    row = find_user_key(user_id)
    return unwrap(row) if row is not None else None


def get_or_create_data_key(user_id: uuid.UUID) -> tuple[UserKey, DataKey]:
    """The user's key row and data key, creating and committing them on first use.

    Two first uploads racing both try to insert; the unique user_id lets one
    win and the other reads the winner's key.
    """
    row = find_user_key(user_id)
    if row is not None:
        return row, unwrap(row)
    data_key = generate_data_key()
    wrapped = get_keyring().wrap(data_key, user_id)
    row = UserKey(
        user_id=user_id, master_key_id=wrapped.master_key_id, wrapped_key=wrapped.ciphertext
    )
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        row = find_user_key(user_id)
        if row is None:  # the other insert failed; FK errors (user gone) land here too
            raise
        return row, unwrap(row)
    log.info("user_key_created", user_id=str(user_id), master_key_id=wrapped.master_key_id)
    return row, data_key


def seal(data_key: DataKey, secret: bytes, associated_data: str) -> bytes:
    """A small secret encrypted under a user's data key (same AEAD as their objects)."""
    return b"".join(iter_encrypted(data_key, [secret], associated_data))


def unseal(data_key: DataKey, sealed: bytes, associated_data: str) -> bytes:
    """The secret `seal` encrypted; DecryptionError when tampered with or misplaced."""
    return b"".join(iter_decrypted(data_key, io.BytesIO(sealed), associated_data))


@dataclass
class RewrapReport:
    primary_id: str
    rewrapped: int = 0
    failed: int = 0


def rewrap_all(batch_size: int = 100) -> RewrapReport:
    """Re-wrap every user key not under the primary master key (master key rotation).

    Walks the table in id order, one committed batch at a time, so it can be
    stopped and re-run. A key that cannot be unwrapped (its master key already
    removed from MASTER_KEYS, or damaged) is counted and left as it is.
    """
    keyring = get_keyring()
    report = RewrapReport(keyring.primary_id)
    last_id: uuid.UUID | None = None
    while True:
        stmt = select(UserKey).where(UserKey.master_key_id != keyring.primary_id)
        if last_id is not None:
            stmt = stmt.where(UserKey.id > last_id)
        rows = db.session.scalars(
            stmt.order_by(UserKey.id).limit(batch_size).with_for_update()
        ).all()
        if not rows:
            break
        for row in rows:
            try:
                wrapped = keyring.rewrap(_wrapped(row), row.user_id)
            except CryptoError as exc:
                report.failed += 1
                log.error("user_key_rewrap_failed", key_id=str(row.id), error=type(exc).__name__)
                continue
            row.master_key_id = wrapped.master_key_id
            row.wrapped_key = wrapped.ciphertext
            row.rotated_at = utcnow()
            report.rewrapped += 1
        last_id = rows[-1].id
        db.session.commit()
    db.session.commit()
    return report
