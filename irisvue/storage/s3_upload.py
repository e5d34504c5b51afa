"""Streamed S3 uploads in bounded memory, with reading and sending overlapped.

minio's `put_object` on a stream of unknown length holds up to three
part-sized buffers (the part in flight, the next one, and a copy made while
looking for the end) and reads the next part only after the previous one was
sent. S3 wants every part but the last to be at least 5 MiB, and SigV4 over
HTTP signs each part's SHA-256, so a part must be complete before it is sent.
Over HTTPS the payload is sent as `UNSIGNED-PAYLOAD`, as minio's own client
does: TLS already protects the bytes in transit (and S3 checks Content-MD5 /
checksums where asked), so the hash pass is saved. Over plain HTTP the hash is
kept: it is the only thing binding the body to the signature.

Here an upload owns a small pool of 1 MiB slabs. The caller's thread fills
slabs from the source (decryption, hashing and image stripping run here) and
hashes them as they fill; a full part (5 slabs) goes to a sender thread, which
writes it to the socket slab by slab and returns each slab to the pool as soon
as it is written, so the next part fills while the previous one is still on
the wire. Memory per upload is the pool (part size + 2 slabs = 7 MiB), not
two parts (10 MiB), whatever the object's size.

Requests are signed with minio's own signer and sent through the HTTP pool
the client was built with; a part whose body was already released cannot be
re-sent, so part requests are not retried: a failure aborts the whole upload,
like any other.

Private minio API, version-fenced (pyproject bounds minio below the next minor):
`Minio._create_multipart_upload`, `_complete_multipart_upload`,
`_abort_multipart_upload`, `_get_region`, `_base_url` (`BaseURL.build`),
`_user_agent`, `_base_url.is_https`, and the undocumented `minio.signer.sign_v4_s3`,
`minio.datatypes.Part`, `S3Error.fromxml`. Each has a test in
tests/test_dependency_fences.py that names what to re-check when minio changes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlunsplit

import structlog
from minio import Minio
from minio.credentials import Provider
from minio.datatypes import Part
from minio.error import S3Error, ServerError
from minio.signer import sign_v4_s3
from urllib3 import BaseHTTPResponse, HTTPHeaderDict, PoolManager

from irisvue.storage.base import StorageError, UploadSource

log = structlog.get_logger(__name__)

SLAB_SIZE = 1024 * 1024
SPARE_SLABS = 2  # filled ahead while a part is on the wire


class LengthMismatchError(StorageError):
    """The stream held a different number of bytes than the caller declared."""


class UploadAborted(StorageError):  # noqa: N818 - raised into the other thread on failure
    """The other side of the upload failed; this side stops."""


def _check_length(declared: int, actual: int) -> None:
    if declared >= 0 and actual != declared:
        raise LengthMismatchError(f"stream held {actual} bytes, {declared} were declared")


class SlabPool:
    """At most `count` reusable buffers, made on first need; `take` blocks until one is free."""

    def __init__(self, count: int, size: int) -> None:
        self._free: list[bytearray] = []
        self._unmade = count
        self._size = size
        self._ready = threading.Condition()
        self.failed = False

    def take(self) -> bytearray:
        with self._ready:
            self._ready.wait_for(lambda: self._free or self._unmade or self.failed)
            if self.failed:
                raise UploadAborted("the part sender failed")
            if self._free:
                return self._free.pop()
            self._unmade -= 1
        return bytearray(self._size)

    def give(self, slab: bytearray) -> None:
        with self._ready:
            self._free.append(slab)
            self._ready.notify()

    def fail(self) -> None:
        with self._ready:
            self.failed = True
            self._ready.notify_all()


@dataclass
class _Part:
    number: int
    slabs: list[tuple[bytearray, int]] = field(default_factory=list)
    size: int = 0
    sha256: Any = field(default_factory=hashlib.sha256)
    signed: bool = True  # False over HTTPS: UNSIGNED-PAYLOAD, no hash pass

    def add(self, slab: bytearray, filled: int) -> None:
        self.slabs.append((slab, filled))
        self.size += filled
        if self.signed:
            self.sha256.update(memoryview(slab)[:filled])

    def content_sha256(self) -> str:
        return self.sha256.hexdigest() if self.signed else "UNSIGNED-PAYLOAD"


class PartUpload:
    """One object upload: a single PUT when it fits one part, else multipart."""

    def __init__(
        self,
        client: Minio,
        bucket: str,
        key: str,
        headers: dict[str, str],
        part_size: int,
        *,
        http: PoolManager,
        credentials: Provider | None,
    ) -> None:
        """`http` and `credentials` are the pool and provider `client` was built with."""
        self._client = client
        self._http = http
        self._credentials = credentials
        self._bucket = bucket
        self._key = key
        self._headers = headers
        self._slabs_per_part = max(1, part_size // SLAB_SIZE)
        self._pool = SlabPool(self._slabs_per_part + SPARE_SLABS, SLAB_SIZE)
        self._signed = not client._base_url.is_https

    def _read_part(self, source: UploadSource, number: int) -> tuple[_Part, bool]:
        """The next part (possibly empty) and whether the source ended."""
        part = _Part(number, signed=self._signed)
        while len(part.slabs) < self._slabs_per_part:
            slab = self._pool.take()
            filled = source.readinto(memoryview(slab))
            if not filled:
                self._pool.give(slab)
                return part, True
            part.add(slab, filled)
            if filled < SLAB_SIZE:
                return part, True
        return part, False

    def run(self, source: UploadSource, length: int = -1) -> tuple[str, str | None]:
        """Upload everything `source` yields; returns (etag, version id). All or nothing."""
        first, ended = self._read_part(source, 1)
        if ended:
            _check_length(length, first.size)
            response = self._put(first, dict(self._headers), {})
            return _etag(response), response.headers.get("x-amz-version-id")
        upload_id = self._client._create_multipart_upload(
            self._bucket, self._key, dict(self._headers)
        )
        try:
            parts = self._send_parts(source, first, upload_id)
            _check_length(length, source.count)
            result = self._client._complete_multipart_upload(
                self._bucket, self._key, upload_id, parts
            )
        except BaseException:
            self._abort(upload_id)
            raise
        return result.etag or "", result.version_id

    def _send_parts(self, source: UploadSource, first: _Part, upload_id: str) -> list[Part]:
        send_queue: queue.Queue[_Part | None] = queue.Queue(maxsize=1)
        sent: list[Part] = []
        errors: list[BaseException] = []
        cancelled = threading.Event()

        def sender() -> None:
            try:
                while (part := send_queue.get()) is not None:
                    if cancelled.is_set():  # the source failed: send nothing more
                        continue
                    query = {"partNumber": str(part.number), "uploadId": upload_id}
                    sent.append(Part(part.number, _etag(self._put(part, {}, query))))
            except BaseException as exc:  # noqa: BLE001 - handed to the reading thread below
                errors.append(exc)
                self._pool.fail()

        thread = threading.Thread(target=sender, name="s3-part-sender", daemon=True)
        thread.start()
        try:
            part, ended = first, False
            while part.slabs:
                self._hand_over(send_queue, part)
                if ended:
                    break
                part, ended = self._read_part(source, part.number + 1)
        except UploadAborted:
            pass  # the sender's error is the one that matters
        except BaseException:
            cancelled.set()
            raise
        finally:
            self._hand_over(send_queue, None)
            thread.join()
        if errors:
            raise errors[0]
        return sent

    def _hand_over(self, send_queue: queue.Queue[_Part | None], part: _Part | None) -> None:
        while True:  # never block forever on a sender that died
            if self._pool.failed:
                if part is None:
                    return
                raise UploadAborted("the part sender failed")
            with contextlib.suppress(queue.Full):
                send_queue.put(part, timeout=0.1)
                return

    def _body(self, part: _Part) -> Iterator[memoryview]:
        for slab, filled in part.slabs:
            yield memoryview(slab)[:filled]
            self._pool.give(slab)  # written to the socket: free for the next part

    def _put(self, part: _Part, headers: dict[str, str], query: dict[str, str]) -> BaseHTTPResponse:
        """PUT a part (or a whole small object) from its slabs, signed like minio does."""
        client = self._client
        region = client._get_region(self._bucket)
        url = client._base_url.build(
            method="PUT",
            region=region,
            bucket_name=self._bucket,
            object_name=self._key,
            query_params=query,
        )
        date = datetime.now(UTC)
        sha256 = part.content_sha256()
        headers = {
            **headers,
            "Host": url.netloc,
            "User-Agent": client._user_agent,
            "Content-Length": str(part.size),
            "x-amz-content-sha256": sha256,
            "x-amz-date": date.strftime("%Y%m%dT%H%M%SZ"),
        }
        creds = self._credentials.retrieve() if self._credentials else None
        if creds:
            headers = sign_v4_s3(
                method="PUT",
                url=url,
                region=region,
                headers=headers,
                credentials=creds,
                content_sha256=sha256,
                date=date,
            )
        # On failure the slabs not yet written stay taken: the upload is over.
        response = self._http.urlopen(
            "PUT",
            urlunsplit(url),
            body=self._body(part),
            headers=HTTPHeaderDict(headers),
            retries=False,
        )
        if response.status != 200:
            if response.status >= 500:
                raise ServerError(f"part upload failed: HTTP {response.status}", response.status)
            if response.data and b"<Error" in response.data:
                raise S3Error.fromxml(response)
            raise StorageError(f"part upload refused: HTTP {response.status}")
        return response

    def _abort(self, upload_id: str) -> None:
        try:
            self._client._abort_multipart_upload(self._bucket, self._key, upload_id)
        except Exception as exc:  # noqa: BLE001 - parts stay invisible; a lifecycle rule removes them
            log.warning("storage.abort_failed", key=self._key, error=type(exc).__name__)


def _etag(response: BaseHTTPResponse) -> str:
    return (response.headers.get("etag") or "").replace('"', "")
