"""The `privacy.export` job: a ZIP of the user's data, streamed encrypted into storage.

Nothing holds the whole archive: `zipfile` writes into a small in-memory sink
(it supports unseekable output, using data descriptors), a generator hands the
sink's bytes on as they appear, `EncryptingReader` encrypts them segment by
segment and the storage backend uploads them in parts. Memory is bounded by the
storage part size, whatever the number or size of the captures.
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from flask import current_app
from sqlalchemy import select

from irisvue.captures import keys
from irisvue.crypto import DataKey, DecryptionError, EncryptingReader, decrypting_reader
from irisvue.extensions import db
from irisvue.jobs import outbox
from irisvue.jobs.registry import JobError, PermanentJobError, job_handler
from irisvue.models import Capture, ConsentRecord, Job, Session, User
from irisvue.models.base import utcnow
from irisvue.privacy import export_services as exports
from irisvue.privacy import services as requests
from irisvue.storage import ObjectNotFound, StorageError, get_storage

log = structlog.get_logger(__name__)

FLUSH_AT = 64 * 1024
STORED_CONTENT_TYPE = "application/octet-stream"  # ciphertext

README = """\
Your IrisVue data export
========================

This archive holds everything IrisVue stores about you, as of {generated}.

account.json    Your account: id, email address, whether it is verified and
                active, and when it was created, changed and last used.
consents.json   Every consent you gave or withdrew, oldest first, with the
                version and SHA-256 fingerprint of the document you agreed to,
                and the hashes that chain the records so none can be altered
                unnoticed.
sessions.json   The devices and apps you signed in from (address, browser or app
                name, when they were used, expire or were signed out). No
                passwords or tokens.
captures.json   A list of your iris photos: id, type, size, SHA-256 and upload time.
captures/       The photos themselves, decrypted, named <id>.jpg or <id>.png.

The download link works for 24 hours; the archive is deleted after {days} days.
"""


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _json(data: Any) -> bytes:
    return json.dumps(data, indent=2, ensure_ascii=False).encode()


@dataclass(frozen=True)
class _CaptureEntry:
    id: uuid.UUID
    object_key: str
    content_type: str
    size: int

    @property
    def name(self) -> str:
        return f"captures/{self.id}.{'png' if self.content_type == 'image/png' else 'jpg'}"


def _documents(user: User, captures: list[Capture]) -> dict[str, bytes]:
    uid = user.id
    consents = db.session.scalars(
        select(ConsentRecord).where(ConsentRecord.user_id == uid).order_by(ConsentRecord.seq)
    ).all()
    sessions = db.session.scalars(
        select(Session).where(Session.user_id == uid).order_by(Session.created_at)
    ).all()
    account = {
        "id": str(uid),
        "email": user.email,
        "is_active": user.is_active,
        "is_verified": user.is_verified,
        "auth_provider": user.auth_provider,
        "created_at": _iso(user.created_at),
        "updated_at": _iso(user.updated_at),
        "last_seen_at": _iso(user.last_seen_at),
    }
    consent_rows = [
        {
            "seq": r.seq,
            "consent_type": r.consent_type,
            "jurisdiction": r.jurisdiction,
            "locale": r.locale,
            "granted": r.granted,
            "granted_at": _iso(r.granted_at),
            "withdrawn_at": _iso(r.withdrawn_at),
            "document_version": r.document_version,
            "document_sha256": r.document_sha256,
            "ip_address": r.ip_address,
            "user_agent": r.user_agent,
            "recorded_at": _iso(r.created_at),
            "prev_hash": r.prev_hash,
            "record_hash": r.record_hash,
        }
        for r in consents
    ]
    session_rows = [
        {
            "id": str(s.id),
            "created_at": _iso(s.created_at),
            "last_used_at": _iso(s.last_used_at),
            "expires_at": _iso(s.expires_at),
            "revoked_at": _iso(s.revoked_at),
            "revoked_reason": s.revoked_reason,
            "ip_address": s.ip_address,
            "user_agent": s.user_agent,
        }
        for s in sessions
    ]
    capture_rows = [
        {
            "id": str(c.id),
            "content_type": c.content_type,
            "size": c.size,
            "sha256": c.sha256,
            "created_at": _iso(c.created_at),
        }
        for c in captures
    ]
    readme = README.format(
        generated=utcnow().strftime("%Y-%m-%d %H:%M UTC"),
        days=current_app.config["EXPORT_RETENTION_DAYS"],
    )
    return {
        "README.txt": readme.encode(),
        "account.json": _json(account),
        "consents.json": _json(consent_rows),
        "sessions.json": _json(session_rows),
        "captures.json": _json(capture_rows),
    }


class _Sink(io.RawIOBase):
    """Where zipfile writes; `take()` hands the bytes on. Unseekable on purpose."""

    def __init__(self) -> None:
        super().__init__()
        self.buffer = bytearray()
        self.offset = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self.buffer += data
        self.offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self.offset

    def take(self) -> bytes:
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


def archive_chunks(
    documents: dict[str, bytes],
    captures: list[_CaptureEntry],
    data_key: DataKey | None,
    on_capture: Callable[[int], None],
) -> Iterator[bytes]:
    """The ZIP's bytes, produced as they are written; captures decrypted on the fly."""
    storage = get_storage()
    sink = _Sink()
    now = utcnow().timetuple()[:6]
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in documents.items():
            archive.writestr(name, data)
            yield sink.take()
        for done, entry in enumerate(captures, start=1):
            if data_key is None:
                break  # shredded: nothing left to decrypt
            info = zipfile.ZipInfo(entry.name, date_time=now)  # type: ignore[arg-type]
            info.compress_type = zipfile.ZIP_STORED  # JPEG/PNG are compressed already
            info.file_size = entry.size  # lets zipfile choose ZIP64 up front when needed
            try:
                reader = storage.open(entry.object_key)
            except ObjectNotFound:
                log.warning("export_capture_missing", capture_id=str(entry.id))
                continue
            try:
                plaintext = decrypting_reader(data_key, reader, entry.object_key)
                with plaintext, archive.open(info, "w") as member:
                    while chunk := plaintext.read(FLUSH_AT):
                        member.write(chunk)
                        if len(sink.buffer) >= FLUSH_AT:
                            yield sink.take()
            finally:
                reader.close()
            yield sink.take()
            on_capture(done)
    yield sink.take()


def _delete_quietly(key: str) -> None:
    try:
        get_storage().delete(key)
    except StorageError as exc:  # the retention sweep cannot find it; a later retry overwrites
        log.error("export_cleanup_failed", error=type(exc).__name__)


@job_handler(exports.EXPORT_KIND, queue="exports", timeout=3600)
def build_export(job: Job) -> dict[str, Any]:
    """Build the user's archive, store it encrypted, and return the signed link."""
    user = db.session.get(User, job.user_id) if job.user_id else None
    if user is None:
        raise PermanentJobError("user_gone")
    user_id, job_id = user.id, job.id
    key_row = keys.find_user_key(user_id)
    # Captures older than the current key were encrypted under one a withdrawal
    # shredded; they are unreadable and their destruction job is on its way.
    rows = (
        list(
            db.session.scalars(
                select(Capture)
                .where(Capture.user_id == user_id, Capture.created_at >= key_row.created_at)
                .order_by(Capture.created_at)
            )
        )
        if key_row is not None
        else []
    )
    documents = _documents(user, rows)
    captures = [_CaptureEntry(c.id, c.object_key, c.content_type, c.size) for c in rows]
    capture_key = keys.unwrap(key_row) if key_row is not None else None
    _, archive_key = keys.get_or_create_data_key(user_id)
    outbox.report_progress(job, 5)

    def on_capture(done: int) -> None:
        outbox.report_progress(job, 5 + 90 * done // max(1, len(captures)))

    key = exports.archive_key(user_id, job_id)
    counted = _Counted(archive_chunks(documents, captures, capture_key, on_capture))
    ciphertext = EncryptingReader(archive_key, counted, key)
    try:
        get_storage().put(key, ciphertext, content_type=STORED_CONTENT_TYPE)
    except StorageError as exc:
        log.warning("export_storage_error", error=type(exc).__name__)
        _delete_quietly(key)
        raise JobError("storage_unavailable") from exc
    except DecryptionError as exc:
        _delete_quietly(key)
        raise JobError("integrity_error") from exc
    except BaseException:
        _delete_quietly(key)
        raise
    finally:
        ciphertext.close()

    pending = requests.pending_request(user_id, exports.REQUEST_KIND)
    if pending is not None:
        requests.complete_request(pending)
    log.info("export_built", size=counted.size, captures=len(captures))
    # No link here: it is minted when the job is read (export_services.present_result).
    return {"object_key": key, "size": counted.size, "captures": len(captures)}


class _Counted:
    """Passes chunks through, counting their bytes (the archive's plaintext size)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.size += len(chunk)
            yield chunk
