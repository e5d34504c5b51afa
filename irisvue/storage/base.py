"""What every storage backend shares: errors, results, keys, readers, upload sources."""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Protocol

DEFAULT_CONTENT_TYPE = "application/octet-stream"
CHUNK_SIZE = 64 * 1024
MAX_DELETE_BATCH = 1000  # S3 DeleteObjects accepts at most 1000 keys per request
MAX_PRESIGN = timedelta(days=7)  # the SigV4 query-signing limit

# Keys are built by our code from ids; an allowlist keeps a hostile id from
# escaping its prefix (`..`, `/`, `\`), and no segment may start with a dot,
# which also keeps keys clear of the local backend's temporary files.
_SEGMENT = r"[A-Za-z0-9_=+@-][A-Za-z0-9._=+@-]*"
_KEY = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")
_PREFIX = re.compile(rf"(?:{_SEGMENT}/)+")
MAX_KEY_BYTES = 1024

UploadStream = IO[bytes] | Iterable[bytes]


class StorageError(RuntimeError):
    """Storage failed; the caller must leave nothing half-written."""


class StorageUnavailable(StorageError):  # noqa: N818 - name fixed by the interface
    """The store cannot be reached (connection refused, timeout, 5xx after retries)."""


class ObjectNotFound(StorageError):  # noqa: N818 - name fixed by the interface
    """`open()` of a key that holds no object."""


class DeleteIncompleteError(StorageError):
    """`delete_prefix()` removed some objects but the store refused others."""

    def __init__(self, deleted: int, failed: list[tuple[str, str]]) -> None:
        super().__init__(f"{len(failed)} object(s) could not be deleted; {deleted} were")
        self.deleted = deleted
        self.failed = failed  # (key, error code) pairs


class InvalidKeyError(ValueError):
    """A key or prefix outside the allowed form: a programming error, never a 503."""


def validate_key(key: str) -> str:
    """Return `key` if it is a safe object key: `segment(/segment)*`, no dot-leading segment."""
    if not isinstance(key, str) or len(key.encode()) > MAX_KEY_BYTES or not _KEY.fullmatch(key):
        raise InvalidKeyError(f"invalid object key {key!r}")
    return key


def validate_prefix(prefix: str) -> str:
    """Return `prefix` if it is one or more safe segments ending in `/`.

    The trailing slash is required so `users/1/` can never match `users/10/...`,
    and an empty prefix (the whole bucket) is refused.
    """
    if not isinstance(prefix, str) or len(prefix.encode()) > MAX_KEY_BYTES:
        raise InvalidKeyError(f"invalid prefix {prefix!r}")
    if not _PREFIX.fullmatch(prefix):
        raise InvalidKeyError(f"invalid prefix {prefix!r} (segments ending in `/`)")
    return prefix


def validate_expiry(expires: timedelta) -> int:
    seconds = int(expires.total_seconds())
    if not 1 <= seconds <= MAX_PRESIGN.total_seconds():
        raise ValueError("presigned URL lifetime must be between 1 second and 7 days")
    return seconds


def check_batch_size(batch_size: int) -> int:
    if not 1 <= batch_size <= MAX_DELETE_BATCH:
        raise ValueError(f"batch_size must be between 1 and {MAX_DELETE_BATCH}")
    return batch_size


@dataclass(frozen=True)
class PutResult:
    key: str
    size: int
    etag: str
    version_id: str | None = None


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    content_type: str | None
    last_modified: datetime | None
    sse: str | None = None  # server-side encryption the store reports, e.g. "AES256"


class ObjectReader(io.RawIOBase):
    """A streamed object body: a readable binary file and an iterator of chunks.

    Iterating yields bytes chunks of `chunk_size`. The caller must `close()` it
    (or use `with`) to release the HTTP connection or file; a werkzeug `Response`
    given the reader as its body closes it when the response ends.
    """

    chunk_size = CHUNK_SIZE

    def __init__(self, key: str, size: int | None, content_type: str | None) -> None:
        super().__init__()
        self.key = key
        self.size = size
        self.content_type = content_type

    def _read(self, size: int) -> bytes:
        raise NotImplementedError

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError("read from a closed object reader")
        if size is None or size < 0:
            return self.readall()
        return self._read(size) if size else b""

    def readall(self) -> bytes:
        return b"".join(iter(lambda: self.read(self.chunk_size), b""))

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def __next__(self) -> bytes:
        chunk = self.read(self.chunk_size)
        if not chunk:
            raise StopIteration
        return chunk

    def __iter__(self) -> Iterator[bytes]:  # type: ignore[override]
        if self.closed:
            raise ValueError("iteration over a closed object reader")
        return self


class UploadSource:
    """Adapts the caller's stream (file-like or iterable of bytes) to `read(n)`/`readinto`.

    Both return exactly what was asked for until the end of the stream (a
    part is filled in one piece), count what they gave out,
    and remembers an exception the caller's stream raised so the backend can
    re-raise it untranslated (e.g. werkzeug's 413 when the upload is too big).
    """

    def __init__(self, stream: UploadStream) -> None:
        read = getattr(stream, "read", None)
        self._read_fn = read if callable(read) else None
        readinto = getattr(stream, "readinto", None)
        self._readinto_fn = readinto if callable(readinto) else None
        self._chunks = None if self._read_fn else iter(stream)  # type: ignore[arg-type]
        self._pending = memoryview(b"")
        self.count = 0
        self.error: Exception | None = None

    def _piece(self, limit: int) -> bytes:
        if self._read_fn is not None:
            data = self._read_fn(limit)
            return data if isinstance(data, bytes) else bytes(data or b"")
        while not self._pending:
            chunk = next(self._chunks, None)  # type: ignore[arg-type]
            if chunk is None:
                return b""
            if not isinstance(chunk, bytes | bytearray | memoryview):
                raise TypeError("an upload stream must yield bytes")
            self._pending = memoryview(chunk).cast("B")
        piece, self._pending = self._pending[:limit], self._pending[limit:]
        return bytes(piece)

    def readinto(self, buffer: memoryview) -> int:
        """Fill `buffer` completely, or up to the end of the stream; returns the byte count."""
        filled = 0
        try:
            while filled < len(buffer):
                if self._readinto_fn is not None:
                    got = self._readinto_fn(buffer[filled:])
                    if got is None:  # would pass for the end of the stream and truncate it
                        raise StorageError("upload source returned None: non-blocking reads")
                    if not got:
                        break
                    filled += got
                    continue
                piece = self._piece(len(buffer) - filled)
                if not piece:
                    break
                buffer[filled : filled + len(piece)] = piece
                filled += len(piece)
        except Exception as exc:
            self.error = exc
            raise
        self.count += filled
        return filled

    def read(self, size: int = -1) -> bytes:
        parts: list[bytes] = []
        wanted = size if size >= 0 else None
        try:
            while wanted is None or wanted > 0:
                piece = self._piece(wanted if wanted is not None else CHUNK_SIZE)
                if not piece:
                    break
                parts.append(piece)
                if wanted is not None:
                    wanted -= len(piece)
        except Exception as exc:
            self.error = exc
            raise
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        self.count += len(data)
        return data


class Storage(Protocol):
    """The interface every backend implements (see `S3Storage`, `LocalStorage`)."""

    backend: str  # "s3" or "local"
    supports_presign: bool

    def ensure_bucket(self) -> None:
        """Create the bucket (or directory) if missing; idempotent."""

    def put(
        self,
        key: str,
        stream: UploadStream,
        length: int = -1,
        content_type: str = DEFAULT_CONTENT_TYPE,
    ) -> PutResult:
        """Store a stream under `key` in bounded memory; all or nothing."""
        ...

    def open(self, key: str) -> ObjectReader:
        """The object's bytes as a stream; raises `ObjectNotFound`. Close it."""
        ...

    def stat(self, key: str) -> ObjectInfo | None:
        """The object's size, etag, type and encryption, or None when missing."""
        ...

    def presigned_get(self, key: str, expires: timedelta) -> str:
        """A time-limited download URL (NotImplementedError when unsupported)."""
        ...

    def delete(self, key: str) -> None:
        """Delete one object; deleting a missing key is not an error."""

    def delete_prefix(self, prefix: str, batch_size: int = MAX_DELETE_BATCH) -> int:
        """Delete every object under `prefix` (ending in `/`); returns how many."""
        ...

    def list_prefix(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every complete object under `prefix` (ending in `/`), lazily; sse not filled in."""
        ...

    def ping(self) -> None:
        """Raise `StorageError` unless the store answers within its short timeout."""
