"""The export's ZIP, produced as it is written: no whole archive in memory.

`zipfile` writes into a small in-memory sink (it supports unseekable output,
using data descriptors) and a generator hands the sink's bytes on as they
appear; captures are decrypted on the fly.
"""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import structlog

from irisvue.crypto import DataKey, decrypting_reader
from irisvue.models.base import utcnow
from irisvue.storage import ObjectNotFound, get_storage

log = structlog.get_logger(__name__)

FLUSH_AT = 64 * 1024


@dataclass(frozen=True)
class CaptureEntry:
    id: uuid.UUID
    object_key: str
    content_type: str
    size: int

    @property
    def name(self) -> str:
        return f"captures/{self.id}.{'png' if self.content_type == 'image/png' else 'jpg'}"


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
    captures: list[CaptureEntry],
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


class Counted:
    """Passes chunks through, counting their bytes (the archive's plaintext size)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.size += len(chunk)
            yield chunk
