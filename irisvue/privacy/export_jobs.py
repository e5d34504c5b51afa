"""The `privacy.export` job: a ZIP of the user's data, streamed encrypted into storage.

Nothing holds the whole archive: the ZIP is produced as it is written
(export_archive.py), `EncryptingReader` encrypts it segment by segment and the
storage backend uploads it in parts. Memory is bounded by the storage part
size, whatever the number or size of the captures.

Erasure may run while an export is being built. The export refuses to start
for an account that is disabled (erasure disables it first, under a lock on
the user row), and finishes under a share lock on that row, in the
transaction that records the job's result: if the user is gone or disabled by
then, it deletes its archive and records no result. Otherwise the result is
committed before erasure can disable the account, and the erasure job that
follows deletes the archive with everything under `users/<id>/` and clears
the result with the user's jobs. Either way nothing is left behind.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import structlog
from flask import current_app
from sqlalchemy import select

from irisvue.crypto import DecryptionError, EncryptingReader
from irisvue.crypto import user_keys as keys
from irisvue.extensions import db
from irisvue.jobs import outbox
from irisvue.jobs.registry import JobError, PermanentJobError, job_handler
from irisvue.models import Capture, ConsentRecord, Job, Session, User
from irisvue.models.base import utcnow
from irisvue.privacy import export_services as exports
from irisvue.privacy import services as requests
from irisvue.privacy.export_archive import CaptureEntry, Counted, archive_chunks
from irisvue.storage import StorageError, get_storage

log = structlog.get_logger(__name__)

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


def _still_active(user_id: Any) -> bool:
    """Whether the account still exists and is enabled, read under a share lock on its
    row that the job's result is committed under (erasure disables the account
    under an exclusive one)."""
    db.session.rollback()  # a fresh transaction: the lock lasts until the result commits
    user = db.session.scalars(
        select(User).where(User.id == user_id).with_for_update(read=True)
    ).one_or_none()
    return user is not None and user.is_active


def _delete_quietly(key: str) -> None:
    """After a failed upload: the job's own error stands, so a storage error is only
    logged (a retry overwrites the key; the retention sweep cannot find an archive
    with no result)."""
    try:
        get_storage().delete(key)
    except StorageError as exc:
        log.error("export_cleanup_failed", error=type(exc).__name__)


def _discard(key: str) -> None:
    """Delete an archive erasure overtook; a storage error retries the job, which
    lands here again (the ciphertext's data key is shredded by the erasure anyway)."""
    try:
        get_storage().delete(key)
    except StorageError as exc:
        log.warning("export_discard_failed", error=type(exc).__name__)
        raise JobError("storage_unavailable") from exc
    log.info("export_discarded")


@job_handler(exports.EXPORT_KIND, queue="exports", timeout=3600)
def build_export(job: Job) -> dict[str, Any]:
    """Build the user's archive, store it encrypted, and return the signed link."""
    user = db.session.get(User, job.user_id) if job.user_id else None
    if user is None or not user.is_active:  # erased, or being erased: no new data key
        if user is not None:  # a retry of an attempt that stopped at its final check
            _discard(exports.archive_key(user.id, job.id))
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
    captures = [CaptureEntry(c.id, c.object_key, c.content_type, c.size) for c in rows]
    capture_key = keys.unwrap(key_row) if key_row is not None else None
    _, archive_key = keys.get_or_create_data_key(user_id)
    outbox.report_progress(job, 5)

    def on_capture(done: int) -> None:
        outbox.report_progress(job, 5 + 90 * done // max(1, len(captures)))

    key = exports.archive_key(user_id, job_id)
    requests.pause_for_tests("EXPORT_TEST_PAUSE_SECONDS")
    counted = Counted(archive_chunks(documents, captures, capture_key, on_capture))
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

    if not _still_active(user_id):
        _discard(key)
        raise PermanentJobError("user_gone")
    pending = requests.pending_request(user_id, exports.REQUEST_KIND)
    if pending is not None:
        requests.complete_request(pending)
    log.info("export_built", size=counted.size, captures=len(captures))
    # No link here: it is minted when the job is read (export_services.present_result).
    return {"object_key": key, "size": counted.size, "captures": len(captures)}
