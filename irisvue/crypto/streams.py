"""Streaming AEAD with a data key: writer, reader, and a bounded-memory EncryptingReader."""

from __future__ import annotations

import contextlib
import functools
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import structlog
import tink

from irisvue.crypto.keys import CryptoError, DataKey, DecryptionError

SEGMENT_SIZE = 1024 * 1024  # ciphertext segment of AES256_GCM_HKDF_1MB
_TAG_SIZE = 16
_HEADER_SIZE = 1 + 32 + 7  # length byte, HKDF salt (= key size), nonce prefix
_PLAINTEXT_SEGMENT = SEGMENT_SIZE - _TAG_SIZE
_READ_SIZE = 64 * 1024

log = structlog.get_logger(__name__)


def _associated_data(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def ciphertext_size(plaintext_size: int) -> int:
    """Exact length of the ciphertext of `plaintext_size` bytes under a data key."""
    if plaintext_size < 0:
        raise ValueError("plaintext_size must be >= 0")
    full, last = divmod(plaintext_size + _HEADER_SIZE, _PLAINTEXT_SEGMENT)
    return full * SEGMENT_SIZE + (last + _TAG_SIZE if last else 0)


class _Unclosable(io.RawIOBase):
    """Passes I/O through but stays open when Tink closes it: the caller owns the stream.

    Tink's streams close their ciphertext sink/source on close; Tink itself handles
    partial writes and `None` returns, so this only forwards.
    """

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__()
        self._stream = stream
        # What the stream raised: Tink reports it as a TinkError, indistinguishable
        # from a failed tag, and a dropped connection is not tampering.
        self.failure: BaseException | None = None

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes | None:
        try:
            return self._stream.read(-1 if size is None else size)
        except BaseException as exc:
            self.failure = exc
            raise

    def write(self, data: bytes | bytearray | memoryview) -> int | None:
        return self._stream.write(data)

    def flush(self) -> None:
        if not self.closed and hasattr(self._stream, "flush"):
            self._stream.flush()


class _DecryptingReader(io.RawIOBase):
    """Tink's decrypting stream with TinkError turned into DecryptionError, unless
    the ciphertext source failed: then its own error (StorageUnavailable, ...)."""

    def __init__(self, stream: BinaryIO, source: _Unclosable) -> None:
        super().__init__()
        self._stream = stream
        self._source = source

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        try:
            data = self._stream.read(-1 if size is None else size)
        except tink.TinkError as exc:
            _raise_source_failure(self._source)
            raise DecryptionError("ciphertext failed authentication") from exc
        if data is None:  # b"" would pass for the end of the stream and hide a truncation
            raise CryptoError("ciphertext source returned None: non-blocking reads unsupported")
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
        super().close()


def encrypting_writer(data_key: DataKey, sink: BinaryIO, associated_data: bytes | str) -> BinaryIO:
    """A writable stream: plaintext written to it goes to `sink` as ciphertext.

    Closing it writes the final segment and leaves `sink` open. Close it only on success:
    closing after a failure still finalises a valid (truncated) ciphertext.
    """
    return data_key.primitive.new_encrypting_stream(
        _Unclosable(sink), _associated_data(associated_data)
    )


def decrypting_reader(
    data_key: DataKey, source: BinaryIO, associated_data: bytes | str
) -> io.RawIOBase:
    """A readable stream of the plaintext of `source`; closing it leaves `source` open.
    DecryptionError if the ciphertext fails authentication; `source`'s own errors pass."""
    adapter = _Unclosable(source)
    try:
        stream = data_key.primitive.new_decrypting_stream(
            adapter, _associated_data(associated_data)
        )
    except tink.TinkError as exc:
        _raise_source_failure(adapter)
        raise DecryptionError("ciphertext failed authentication") from exc
    return _DecryptingReader(stream, adapter)


def _raise_source_failure(source: _Unclosable) -> None:
    if source.failure is not None:
        failure, source.failure = source.failure, None
        raise failure


def iter_decrypted(
    data_key: DataKey, source: BinaryIO, associated_data: bytes | str, chunk_size: int = _READ_SIZE
) -> Iterator[bytes]:
    """Plaintext chunks of `source` (e.g. for a streamed Flask response)."""
    with decrypting_reader(data_key, source, associated_data) as reader:
        while chunk := reader.read(chunk_size):
            yield chunk


class _Pipe(io.RawIOBase):
    """In-memory sink Tink writes ciphertext into; EncryptingReader drains it."""

    def __init__(self) -> None:
        super().__init__()
        self.buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.buffer += data
        return len(data)

    def take(self, size: int) -> bytes:
        with memoryview(self.buffer) as view:
            out = bytes(view[:size])
        del self.buffer[:size]
        return out

    def take_into(self, target: bytearray | memoryview) -> int:
        size = min(len(target), len(self.buffer))
        with memoryview(self.buffer) as view:
            target[:size] = view[:size]
        del self.buffer[:size]
        return size

    def close(self) -> None:  # Tink closes its sink at the end; the buffer stays readable
        return None


class EncryptingReader(io.RawIOBase):
    """Readable ciphertext of a plaintext stream or iterable, with bounded memory.

    Pulls plaintext from `plaintext` (`.read(n)` or an iterable of bytes chunks) only
    when the ciphertext buffer is empty, so at most about one segment (1 MiB) of
    ciphertext plus one read chunk is held. `read(n)` may return fewer than `n` bytes
    (callers such as minio's `put_object` loop). Exceptions from `plaintext` propagate
    from `read`, so an aborted upload never looks like a finished one.
    """

    def __init__(
        self,
        data_key: DataKey,
        plaintext: BinaryIO | Iterable[bytes],
        associated_data: bytes | str,
        read_size: int = _READ_SIZE,
    ) -> None:
        super().__init__()
        self._pipe = _Pipe()
        self._writer = data_key.primitive.new_encrypting_stream(
            self._pipe, _associated_data(associated_data)
        )
        read = getattr(plaintext, "read", None)
        self._chunks: Iterator[bytes | None] = (
            iter(functools.partial(read, read_size), b"") if callable(read) else iter(plaintext)
        )
        self._finished = False
        self.plaintext_bytes = 0
        self.ciphertext_bytes = 0

    def readable(self) -> bool:
        return True

    def _pump(self) -> None:
        for chunk in self._chunks:
            if chunk is None:
                raise CryptoError("plaintext source returned None: non-blocking reads unsupported")
            if chunk:  # an empty chunk from an iterable is not the end of the stream
                self._writer.write(chunk)
                self.plaintext_bytes += len(chunk)
                return
        self._writer.close()
        self._finished = True

    def read(self, size: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError("read of closed EncryptingReader")
        if size is None or size < 0:
            return self.readall()
        while size and not self._pipe.buffer and not self._finished:
            self._pump()
        data = self._pipe.take(size)
        self.ciphertext_bytes += len(data)
        return data

    def readall(self) -> bytes:
        return b"".join(iter(functools.partial(self.read, SEGMENT_SIZE), b""))

    def readinto(self, buffer: bytearray | memoryview) -> int:
        """Like `read`, straight from the ciphertext buffer: one copy less per part."""
        if self.closed:
            raise ValueError("read of closed EncryptingReader")
        while len(buffer) and not self._pipe.buffer and not self._finished:
            self._pump()
        size = self._pipe.take_into(buffer)
        self.ciphertext_bytes += size
        return size

    def close(self) -> None:
        if not self.closed:
            self._writer.close()  # releases Tink's stream; leftover ciphertext is dropped
            self._pipe.buffer.clear()
        super().close()


def iter_encrypted(
    data_key: DataKey,
    plaintext: BinaryIO | Iterable[bytes],
    associated_data: bytes | str,
    chunk_size: int = 256 * 1024,
) -> Iterator[bytes]:
    """Ciphertext chunks of a plaintext stream or iterable, with bounded memory."""
    with EncryptingReader(data_key, plaintext, associated_data) as reader:
        while chunk := reader.read(chunk_size):
            yield chunk


@dataclass
class PlaintextStream:
    """A stored object's plaintext, iterated in chunks for a streamed response.

    `first` is a chunk the caller already decrypted (so authentication errors in
    the first segment become a clean error before any header is sent). Iterating
    to the end, or `close()`, releases the decrypting reader and the source's
    connection. A later segment failing mid-stream is logged as `log_event` and
    re-raised so the server drops the connection: the client sees a body
    shorter than its Content-Length rather than a silent, truncated success.
    """

    plaintext: io.RawIOBase
    source: Any  # the ciphertext reader (closeable)
    first: bytes = b""
    log_event: str = "object_integrity_error"
    log_fields: dict[str, str] = field(default_factory=dict)

    def __iter__(self) -> Iterator[bytes]:
        try:
            if self.first:
                yield self.first
            while chunk := self.plaintext.read(_READ_SIZE):
                yield chunk
        except CryptoError:
            log.error(self.log_event, stage="stream", **self.log_fields)
            raise
        finally:
            self.close()

    def close(self) -> None:
        for stream in (self.plaintext, self.source):
            with contextlib.suppress(Exception):
                stream.close()
