"""Captures: consent-gated encrypted uploads, reads and deletion (destruction: destruction.py).

Objects live at `users/<user_id>/captures/<capture_id>`, encrypted with the
user's data key and the object key as associated data. An upload holds no
database connection while it streams: the checks commit before the body is
read, and the row is written after the object, under a lock on the user row
that serialises it with consent changes (a withdrawal that lands mid-upload
makes the upload fail and delete its object).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import structlog
from flask import current_app
from sqlalchemy import select, tuple_

from irisvue.captures.upload import UploadRequest, open_upload
from irisvue.consent.services import has_live_consent
from irisvue.crypto import (
    DecryptionError,
    EncryptingReader,
    PlaintextStream,
    UnknownMasterKeyError,
    UnwrapError,
    ciphertext_size,
    decrypting_reader,
)
from irisvue.crypto import user_keys as keys
from irisvue.errors import APIError
from irisvue.extensions import db
from irisvue.models import Capture, User
from irisvue.models.base import utcnow
from irisvue.pagination import decode_keyset, encode_keyset
from irisvue.storage import ObjectNotFound, StorageError, get_storage

log = structlog.get_logger(__name__)

STORED_CONTENT_TYPE = "application/octet-stream"  # ciphertext: the image type stays in the row
READ_CHUNK = 64 * 1024


def user_prefix(user_id: uuid.UUID) -> str:
    """Every capture object of a user is under this prefix (erasure deletes by prefix)."""
    return f"users/{user_id}/captures/"


def object_key(user_id: uuid.UUID, capture_id: uuid.UUID) -> str:
    return f"{user_prefix(user_id)}{capture_id}"


def max_upload_bytes() -> int:
    return int(current_app.config["MAX_UPLOAD_MB"]) * 1024 * 1024


def _storage_unavailable(exc: StorageError) -> APIError:
    log.error("capture_storage_error", error=type(exc).__name__)
    return APIError(503, "storage_unavailable", "The object store is unavailable; retry later.")


def _integrity_error(capture_id: uuid.UUID, reason: str) -> APIError:
    log.error("capture_integrity_error", capture_id=str(capture_id), reason=reason)
    return APIError(500, "integrity_error", "The stored capture failed its integrity check.")


def _content_destroyed() -> APIError:
    return APIError(
        410, "content_destroyed", "The capture's content was destroyed and cannot be read."
    )


def _check_may_upload(user_id: uuid.UUID) -> User:
    user = db.session.get(User, user_id)
    if user is None or not user.is_active:
        raise APIError(401, "account_disabled", "The account is disabled or no longer exists.")
    if not has_live_consent(user_id):
        raise APIError(
            403,
            "consent_required",
            "Uploading an iris photo needs a live biometric_capture consent.",
        )
    if not user.is_verified:
        raise APIError(403, "email_unverified", "Verify your email address before uploading.")
    return user


def _delete_quietly(key: str) -> None:
    try:
        get_storage().delete(key)
    except StorageError as exc:  # left for the orphan sweep; it is unreadable without its row
        log.error("capture_object_cleanup_failed", error=type(exc).__name__)


def _finalise(user_id: uuid.UUID, key_row_id: uuid.UUID, capture: Capture) -> None:
    """Write the row if consent and the data key are still those the upload started with."""
    # FOR NO KEY UPDATE, like consent appends: a withdrawal commits before or after us.
    user = db.session.scalars(
        select(User).where(User.id == user_id).with_for_update(key_share=True)
    ).one_or_none()
    if user is None or not user.is_active:
        raise APIError(401, "account_disabled", "The account is disabled or no longer exists.")
    if not has_live_consent(user_id):
        raise APIError(
            403, "consent_required", "The biometric_capture consent was withdrawn during upload."
        )
    current_key = keys.find_user_key(user_id)
    if current_key is None or current_key.id != key_row_id:
        raise APIError(409, "upload_conflict", "The user's data key changed; upload again.")
    db.session.add(capture)
    user.last_seen_at = utcnow()  # the retention clock
    db.session.commit()


def create_capture(user_id: uuid.UUID, request: UploadRequest) -> Capture:
    """Check consent and email, then stream the photo through stripping and encryption."""
    _check_may_upload(user_id)
    db.session.rollback()  # hold no connection while the client sends
    limit = max_upload_bytes()
    upload = open_upload(request, limit)  # 413/415 before anything is stored
    key_row, data_key = keys.get_or_create_data_key(user_id)
    key_row_id = key_row.id
    db.session.rollback()

    capture_id = uuid.uuid4()
    key = object_key(user_id, capture_id)
    ciphertext = EncryptingReader(data_key, upload, key)
    try:
        get_storage().put(key, ciphertext, content_type=STORED_CONTENT_TYPE)
    except StorageError as exc:
        raise _storage_unavailable(exc) from exc
    finally:
        ciphertext.close()

    capture = Capture(
        id=capture_id,
        user_id=user_id,
        object_key=key,
        content_type=upload.content_type,
        size=upload.plaintext.size,
        sha256=upload.plaintext.sha256,
    )
    try:
        _finalise(user_id, key_row_id, capture)
    except BaseException:
        db.session.rollback()
        _delete_quietly(key)
        raise
    log.info("capture_created", capture_id=str(capture_id), size=capture.size)
    return capture


def encode_cursor(capture: Capture) -> str:
    return encode_keyset(capture.created_at, capture.id)


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """Raises ValueError for anything the documented cursor pattern does not admit."""
    return decode_keyset(cursor)


def list_captures(
    user_id: uuid.UUID, *, limit: int, after: tuple[datetime, uuid.UUID] | None = None
) -> tuple[list[Capture], str | None]:
    """A page of the user's captures, newest first, and the cursor of the next page."""
    stmt = select(Capture).where(Capture.user_id == user_id)
    if after is not None:
        stmt = stmt.where(tuple_(Capture.created_at, Capture.id) < tuple_(*after))
    rows = list(
        db.session.scalars(
            stmt.order_by(Capture.created_at.desc(), Capture.id.desc()).limit(limit + 1)
        )
    )
    page = rows[:limit]
    return page, encode_cursor(page[-1]) if len(rows) > limit else None


def get_capture(user_id: uuid.UUID, item_id: uuid.UUID) -> Capture:
    """The user's capture; another user's is 404 like a missing one (never 403)."""
    capture = db.session.scalars(
        select(Capture).where(Capture.id == item_id, Capture.user_id == user_id)
    ).one_or_none()
    if capture is None:
        raise APIError(404, "not_found", "No such capture.")
    return capture


@dataclass
class CaptureContent:
    """A capture's metadata and its decrypted bytes, first segment already verified."""

    capture_id: uuid.UUID
    content_type: str
    size: int
    stream: PlaintextStream

    @property
    def filename(self) -> str:
        return f"{self.capture_id}.{'png' if self.content_type == 'image/png' else 'jpg'}"

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.stream)

    def close(self) -> None:
        self.stream.close()


def open_content(user_id: uuid.UUID, item_id: uuid.UUID) -> CaptureContent:
    """Unwrap the key, open the object and decrypt its first segment (errors before 200)."""
    capture = get_capture(user_id, item_id)
    capture_id, size, content_type = capture.id, capture.size, capture.content_type
    key = capture.object_key
    key_row = keys.find_user_key(capture.user_id)
    # A key newer than the capture replaced the shredded one it was encrypted under.
    if key_row is None or key_row.created_at > capture.created_at:
        raise _content_destroyed()
    try:
        data_key = keys.unwrap(key_row)
    except UnknownMasterKeyError as exc:
        log.error("capture_master_key_missing", master_key_id=key_row.master_key_id)
        raise APIError(500, "key_unavailable", "The capture's key cannot be opened.") from exc
    except UnwrapError as exc:
        raise _integrity_error(capture_id, "unwrap_failed") from exc
    db.session.rollback()  # no connection held while the bytes stream

    try:
        reader = get_storage().open(key)
    except ObjectNotFound as exc:
        raise _content_destroyed() from exc
    except StorageError as exc:
        raise _storage_unavailable(exc) from exc
    try:
        if reader.size is not None and reader.size != ciphertext_size(size):
            raise _integrity_error(capture_id, "size_mismatch")
        plaintext = decrypting_reader(data_key, reader, key)
        try:
            first = plaintext.read(READ_CHUNK)
        except DecryptionError as exc:
            plaintext.close()
            raise _integrity_error(capture_id, "decryption_failed") from exc
        except StorageError as exc:
            plaintext.close()
            raise _storage_unavailable(exc) from exc
    except BaseException:
        reader.close()
        raise
    stream = PlaintextStream(
        plaintext,
        reader,
        first,
        log_event="capture_integrity_error",
        log_fields={"capture_id": str(capture_id)},
    )
    return CaptureContent(capture_id, content_type, size, stream)


def delete_capture(user_id: uuid.UUID, item_id: uuid.UUID) -> None:
    """Delete the object, then the row (a failed row delete can simply be retried)."""
    capture = get_capture(user_id, item_id)
    try:
        get_storage().delete(capture.object_key)
    except StorageError as exc:
        raise _storage_unavailable(exc) from exc
    db.session.delete(capture)
    db.session.commit()
    log.info("capture_deleted", capture_id=str(item_id))
