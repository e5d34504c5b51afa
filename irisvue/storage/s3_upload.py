"""Streamed S3 uploads in bounded memory, with reading and sending overlapped.

minio's `put_object` on a stream of unknown length holds up to three
part-sized buffers (the part in flight, the next one, and a copy made while
looking for the end) and reads the next part only after the previous one was
sent. Here each upload owns exactly two reusable part buffers: while one part
travels on a background thread (hashing and socket writes release the GIL),
the caller's stream fills the other. Memory is `2 * part_size` whatever the
object's size, and the source (decryption, hashing, image stripping) runs in
parallel with the network.

The S3 calls are minio's own (`_create_multipart_upload`, `_upload_part`, ...):
they sign and retry like `put_object`; minio is pinned in the lock files.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import Future, ThreadPoolExecutor

import structlog
from minio import Minio
from minio.datatypes import Part

from irisvue.storage.base import StorageError, UploadSource

log = structlog.get_logger(__name__)


class LengthMismatchError(StorageError):
    """The stream held a different number of bytes than the caller declared."""


def _check_length(declared: int, actual: int) -> None:
    if declared >= 0 and actual != declared:
        raise LengthMismatchError(f"stream held {actual} bytes, {declared} were declared")


class PartUpload:
    """One object upload: a single PUT when it fits one part, else multipart."""

    def __init__(
        self,
        client: Minio,
        bucket: str,
        key: str,
        headers: dict[str, str],
        part_size: int,
    ) -> None:
        self._client = client
        self._bucket = bucket
        self._key = key
        self._headers = headers
        self._part_size = part_size

    def run(self, source: UploadSource, length: int = -1) -> tuple[str, str | None]:
        """Upload everything `source` yields; returns (etag, version id). All or nothing."""
        buffers = (bytearray(self._part_size), bytearray(self._part_size))
        filled = source.readinto(memoryview(buffers[0]))
        if filled < self._part_size:
            _check_length(length, filled)
            result = self._client._put_object(
                self._bucket, self._key, memoryview(buffers[0])[:filled], dict(self._headers)
            )
            return result.etag or "", result.version_id
        return self._multipart(source, buffers, filled, length)

    def _multipart(
        self, source: UploadSource, buffers: tuple[bytearray, bytearray], filled: int, length: int
    ) -> tuple[str, str | None]:
        client = self._client
        upload_id = client._create_multipart_upload(self._bucket, self._key, dict(self._headers))
        parts: list[Part] = []
        in_flight: Future[Part] | None = None
        with ThreadPoolExecutor(1, thread_name_prefix="s3-part") as sender:
            try:
                current = 0
                while filled:
                    if in_flight is not None:
                        parts.append(in_flight.result())  # frees the other buffer
                    part = memoryview(buffers[current])[:filled]
                    in_flight = sender.submit(self._send, upload_id, len(parts) + 1, part)
                    if filled < self._part_size:
                        break
                    current ^= 1
                    filled = source.readinto(memoryview(buffers[current]))
                if in_flight is not None:
                    parts.append(in_flight.result())
                    in_flight = None
                _check_length(length, source.count)
                result = client._complete_multipart_upload(
                    self._bucket, self._key, upload_id, parts
                )
            except BaseException:
                if in_flight is not None:  # let the part in flight finish with its buffer
                    with contextlib.suppress(Exception):
                        in_flight.result()
                self._abort(upload_id)
                raise
        return result.etag or "", result.version_id

    def _send(self, upload_id: str, number: int, data: memoryview) -> Part:
        etag = self._client._upload_part(
            self._bucket,
            self._key,
            data,  # type: ignore[arg-type]  # any bytes-like body: urllib3 sends it as is
            None,
            upload_id,
            number,
        )
        return Part(number, etag)

    def _abort(self, upload_id: str) -> None:
        try:
            self._client._abort_multipart_upload(self._bucket, self._key, upload_id)
        except Exception as exc:  # noqa: BLE001 - parts stay invisible; a lifecycle rule removes them
            log.warning("storage.abort_failed", key=self._key, error=type(exc).__name__)
