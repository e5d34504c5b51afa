"""Self-service data export: requesting it, signed download links, streaming it back, purging.

The archive is built by the `privacy.export` job (export_jobs.py) into
`users/<user_id>/exports/<job_id>.zip`, encrypted with the user's data key and the
object key as associated data, like a capture. The finished job's stored `result`
holds `object_key`, `size` (plaintext bytes) and `captures`: nothing secret.

The download link is minted whenever the job is read (`present_result`, the
jobs feature's result presenter for the kind): a link to this API signed with
SECRET_KEY (itsdangerous) over the job id and the user's *binding*, valid
EXPORT_LINK_TTL_SECONDS. The binding is a keyed HMAC (`audit.pseudonym`, under a
purpose of its own) over what sign-out everywhere, a password change or reset,
the withdrawal of biometric consent (the data key is shredded) and erasure
change: the password hash, the user's sessions epoch (bumped whenever all
sessions are revoked at once; signing out of one device leaves it) and the data
key. Any of those voids every link handed out before. The link needs no bearer
token; it streams the archive decrypted (an S3 presigned URL would hand out
ciphertext).
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select

from irisvue.auth.audit import pseudonym
from irisvue.crypto import DecryptionError, PlaintextStream, decrypting_reader
from irisvue.crypto import user_keys as keys
from irisvue.errors import APIError
from irisvue.extensions import db
from irisvue.jobs import outbox
from irisvue.models import Job, User, UserKey
from irisvue.models.base import as_utc, utcnow
from irisvue.privacy import services as requests
from irisvue.storage import ObjectNotFound, StorageError, get_storage

log = structlog.get_logger(__name__)

EXPORT_KIND = "privacy.export"
REQUEST_KIND = "export"
_SALT = "irisvue.privacy.export-download"
_BINDING_PURPOSE = "export-link-binding"
FIRST_CHUNK = 64 * 1024


def archive_key(user_id: uuid.UUID, job_id: uuid.UUID) -> str:
    return f"users/{user_id}/exports/{job_id}.zip"


def _pending_job(user_id: uuid.UUID) -> Job | None:
    return db.session.scalar(
        select(Job)
        .where(Job.user_id == user_id, Job.kind == EXPORT_KIND)
        .where(Job.status.in_(("queued", "started")))
        .order_by(Job.created_at.desc())
        .limit(1)
    )


def request_export(user_id: uuid.UUID) -> Job:
    """The user's pending export job, or a new one (with its privacy request record)."""
    # Row lock on the user: two concurrent requests serialise, the second sees the first job.
    user = db.session.scalars(
        select(User).where(User.id == user_id).with_for_update(key_share=True)
    ).one_or_none()
    if user is None or not user.is_active:
        raise APIError(401, "account_disabled", "The account is disabled or no longer exists.")
    job = _pending_job(user_id)
    if job is not None:
        db.session.commit()
        return job
    if requests.pending_request(user_id, REQUEST_KIND) is None:
        requests.open_request(user_id, REQUEST_KIND)
    job = outbox.submit(EXPORT_KIND, user_id=user_id, args={})
    job_id = job.id
    outbox.commit()
    log.info("export_requested", job_id=str(job_id))
    return db.session.get(Job, job_id)  # type: ignore[return-value]


# --- signed download links ------------------------------------------------------


def link_ttl_seconds() -> int:
    return int(current_app.config["EXPORT_LINK_TTL_SECONDS"])


def _serializer(issued_at: int | None = None) -> URLSafeTimedSerializer:
    signer: type[TimestampSigner] = TimestampSigner
    if issued_at is not None:

        class _IssuedAt(TimestampSigner):
            def get_timestamp(self) -> int:
                return issued_at

        signer = _IssuedAt
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_SALT, signer=signer)


def _binding(user_id: uuid.UUID, key: UserKey | None) -> str:
    """An HMAC over what voids the user's links (see the module docstring); "" for a
    missing or disabled account, which no link is accepted with (`_check_token`).
    `key`: the user's key row (`keys.find_user_key`), which the caller reads once."""
    user = db.session.get(User, user_id)
    if user is None or not user.is_active:
        return ""
    material = "|".join(
        str(part or "")
        for part in (user.id, user.hashed_password, user.sessions_epoch, key and key.id)
    )
    # Its own purpose, so its own key derived from SECRET_KEY: no pseudonym shares it.
    return pseudonym(_BINDING_PURPOSE, material)


def download_token(job_id: uuid.UUID, user_id: uuid.UUID, *, issued_at: int | None = None) -> str:
    """A token for the job's download link; `issued_at` (epoch seconds) backdates it."""
    binding = _binding(user_id, keys.find_user_key(user_id))
    return _serializer(issued_at).dumps([str(job_id), binding])


def download_path(job_id: uuid.UUID, token: str) -> str:
    return f"/api/v1/privacy/export/{job_id}/download?token={token}"


def download_url(job_id: uuid.UUID, token: str) -> str:
    """Absolute with PUBLIC_BASE_URL set, else a path (the worker knows no host)."""
    return f"{current_app.config.get('PUBLIC_BASE_URL') or ''}{download_path(job_id, token)}"


def present_result(job: Job, stored: dict[str, Any]) -> dict[str, Any]:
    """What the owner reads as the export's result: a fresh link, nothing stored."""
    link: dict[str, Any] = {"download_url": None, "download_token": None, "expires_at": None}
    usable = job.status == "finished" and stored.get("object_key") and not stored.get("purged")
    if usable and job.user_id is not None and job.finished_at is not None:
        now = utcnow()
        retention = timedelta(days=int(current_app.config["EXPORT_RETENTION_DAYS"]))
        finished = as_utc(job.finished_at)
        expires = min(now + timedelta(seconds=link_ttl_seconds()), finished + retention)
        token = download_token(job.id, job.user_id)
        link = {
            "download_url": download_url(job.id, token),
            "download_token": token,
            "expires_at": expires.isoformat(),
        }
    return {
        "size": int(stored.get("size", 0)),
        "captures": int(stored.get("captures", 0)),
        **link,
    }


def _check_token(job_id: uuid.UUID, token: str) -> tuple[Job | None, UserKey | None]:
    """The job and its user's key row, once the token is checked against them."""
    invalid = APIError(401, "token_invalid", "The download link is invalid.")
    try:
        signed = _serializer().loads(token, max_age=link_ttl_seconds())
    except SignatureExpired:
        raise APIError(401, "token_expired", "The download link has expired.") from None
    except BadSignature:
        raise invalid from None
    if not isinstance(signed, list) or len(signed) != 2 or signed[0] != str(job_id):
        raise invalid
    if not isinstance(signed[1], str) or not signed[1]:
        # Minted for a missing or disabled account: it binds nothing, and would
        # match that account's binding for as long as it stays disabled.
        raise invalid
    job = db.session.get(Job, job_id)
    if job is None or job.user_id is None:
        return job, None
    key_row = keys.find_user_key(job.user_id)
    if not hmac.compare_digest(signed[1], _binding(job.user_id, key_row)):
        raise APIError(
            401,
            "token_revoked",
            "The download link was revoked (sign-out everywhere, password change, "
            "consent withdrawal or erasure); read the job again for a new one.",
        )
    return job, key_row


@dataclass
class ExportDownload:
    """The decrypted archive, streamed; `close()` releases the storage connection."""

    size: int
    filename: str
    stream: PlaintextStream

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.stream)

    def close(self) -> None:
        self.stream.close()


def _gone() -> APIError:
    return APIError(404, "not_found", "No such export, or it has expired.")


def _destroyed() -> APIError:
    return APIError(
        410,
        "content_destroyed",
        "The data in this export was destroyed (biometric consent withdrawn); "
        "request a new export.",
    )


def open_download(job_id: uuid.UUID, token: str) -> ExportDownload:
    """Check the signed token, then open the archive for streaming (errors before 200)."""
    job, key_row = _check_token(job_id, token)
    result = (job.result or {}) if job is not None else {}
    if job is None or job.kind != EXPORT_KIND or job.status != "finished" or job.user_id is None:
        raise _gone()
    if not result.get("object_key") or result.get("purged"):
        raise _gone()
    key, size = result["object_key"], int(result["size"])
    # Biometric consent withdrawn since: the key that encrypted the archive is shredded
    # (a newer one may exist). Checked here, before any header: 410, not a broken stream.
    if key_row is None or (
        job.finished_at and as_utc(key_row.created_at) > as_utc(job.finished_at)
    ):
        raise _destroyed()
    data_key = keys.unwrap(key_row)
    filename = f"irisvue-export-{job.finished_at:%Y-%m-%d}.zip" if job.finished_at else "export.zip"
    db.session.rollback()  # no connection held while the archive streams
    try:
        reader = get_storage().open(key)
    except ObjectNotFound as exc:
        raise _gone() from exc
    except StorageError as exc:
        log.error("export_storage_error", error=type(exc).__name__)
        raise APIError(503, "storage_unavailable", "The object store is unavailable.") from exc
    try:
        plaintext = decrypting_reader(data_key, reader, key)
        first = plaintext.read(FIRST_CHUNK)  # authenticates the first segment before any byte
    except DecryptionError:
        reader.close()
        log.warning("export_undecryptable")  # encrypted under a key that was since replaced
        raise _destroyed() from None
    except StorageError as exc:  # the store dropped the read: 503, as when opening it
        reader.close()
        log.error("export_storage_error", error=type(exc).__name__)
        raise APIError(503, "storage_unavailable", "The object store is unavailable.") from exc
    except BaseException:
        reader.close()
        raise
    stream = PlaintextStream(plaintext, reader, first=first, log_event="export_integrity_error")
    return ExportDownload(size, filename, stream)


# --- retention ------------------------------------------------------------------


def purge_expired_exports() -> int:
    """Delete archives finished more than EXPORT_RETENTION_DAYS ago; returns how many.

    The job row stays (it is the user's history) but loses its link. Storage
    errors leave the row as it is, so the next sweep tries again.
    """
    days = int(current_app.config["EXPORT_RETENTION_DAYS"])
    cutoff = utcnow() - timedelta(days=days)
    jobs = db.session.scalars(
        select(Job).where(
            Job.kind == EXPORT_KIND, Job.status == "finished", Job.finished_at <= cutoff
        )
    ).all()
    purged = 0
    storage = get_storage()
    for job in jobs:
        result: dict[str, Any] = dict(job.result or {})
        key = result.get("object_key")
        if not key or result.get("purged"):
            continue
        try:
            storage.delete(key)
        except StorageError as exc:
            log.warning("export_purge_failed", job_id=str(job.id), error=type(exc).__name__)
            continue
        result.pop("download_url", None)  # written by releases before links were minted
        result["purged"] = True
        job.result = result
        db.session.commit()
        purged += 1
    if purged:
        log.info("exports_purged", count=purged)
    return purged
