"""The local backend of the embedded development stack: one file per object."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from irisvue.storage.base import (
    CHUNK_SIZE,
    DEFAULT_CONTENT_TYPE,
    MAX_DELETE_BATCH,
    ObjectInfo,
    ObjectNotFound,
    ObjectReader,
    PutResult,
    StorageError,
    StorageUnavailable,
    UploadSource,
    UploadStream,
    check_batch_size,
    validate_key,
    validate_prefix,
)

# Keys never have a dot-leading segment, so these names cannot collide with one.
TMP_PREFIX = ".tmp-"


class _FileReader(ObjectReader):
    def __init__(self, key: str, fh: BinaryIO, size: int) -> None:
        super().__init__(key, size, DEFAULT_CONTENT_TYPE)
        self._fh = fh

    def _read(self, size: int) -> bytes:
        return self._fh.read(size)

    def close(self) -> None:
        if not self.closed:
            try:
                self._fh.close()
            finally:
                super().close()


class LocalStorage:
    """Objects as files under `root` (the instance folder's `objects/`).

    Writes go to a temporary file in the target directory and are renamed
    into place (`os.replace`), so a failed put leaves nothing and readers
    never see half an object. No server-side encryption, no content types
    (stat and open report `application/octet-stream`), and no presigned URLs:
    `presigned_get` raises NotImplementedError (`supports_presign` is False),
    callers stream the bytes through the app instead. The etag is
    `<size hex>-<mtime ns hex>`, not a content hash.
    """

    backend = "local"
    supports_presign = False

    def __init__(self, root: str | os.PathLike[str], chunk_size: int = CHUNK_SIZE) -> None:
        self.root = Path(root).absolute()
        self.chunk_size = chunk_size

    def _path(self, key_or_prefix: str) -> Path:
        path = self.root.joinpath(*key_or_prefix.strip("/").split("/"))
        # Defence in depth behind the key allowlist: a symlink must not lead out.
        real_root = self.root.resolve()
        if not path.resolve().is_relative_to(real_root):
            raise StorageError("object path escapes the storage directory")
        return path

    @staticmethod
    def _etag(st: os.stat_result) -> str:
        return f"{st.st_size:x}-{st.st_mtime_ns:x}"

    def ensure_bucket(self) -> None:
        """Create the storage directory if it is missing."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageUnavailable(f"cannot create {self.root}: {exc.strerror}") from exc

    def put(
        self,
        key: str,
        stream: UploadStream,
        length: int = -1,
        content_type: str = DEFAULT_CONTENT_TYPE,
    ) -> PutResult:
        """Write the stream to a temporary file, then rename it into place.

        Reads at most `length` bytes when given and fails if the stream is
        shorter. Exceptions raised by `stream` pass through unchanged.
        """
        path = self._path(validate_key(key))
        source = UploadSource(stream)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
        except OSError as exc:
            raise StorageError(f"put: {exc.strerror}") from exc
        try:
            with os.fdopen(fd, "wb") as fh:
                while length < 0 or source.count < length:
                    want = (
                        self.chunk_size
                        if length < 0
                        else min(self.chunk_size, length - source.count)
                    )
                    chunk = source.read(want)
                    if not chunk:
                        break
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
            if 0 <= length != source.count:
                raise StorageError(f"put: stream ended after {source.count} of {length} bytes")
            os.replace(tmp, path)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, OSError) and exc is not source.error:
                raise StorageError(f"put: {exc.strerror or exc}") from exc
            raise
        return PutResult(key, source.count, self._etag(path.stat()))

    def open(self, key: str) -> ObjectReader:
        """The file as a streamed reader; raises `ObjectNotFound`. The caller closes it."""
        path = self._path(validate_key(key))
        try:
            fh = path.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ObjectNotFound("open: no such object") from exc
        except OSError as exc:
            raise StorageError(f"open: {exc.strerror}") from exc
        return _FileReader(key, fh, os.fstat(fh.fileno()).st_size)

    def stat(self, key: str) -> ObjectInfo | None:
        """Size, etag and mtime of the file, or None if there is no such object."""
        path = self._path(validate_key(key))
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise StorageError(f"stat: {exc.strerror}") from exc
        if not path.is_file():
            return None
        return ObjectInfo(
            key=key,
            size=st.st_size,
            etag=self._etag(st),
            content_type=DEFAULT_CONTENT_TYPE,
            last_modified=datetime.fromtimestamp(st.st_mtime, UTC),
        )

    def presigned_get(self, key: str, expires: timedelta) -> str:
        """Not available for local files: serve the bytes through the app (`open`)."""
        raise NotImplementedError("the local storage backend has no presigned URLs")

    def delete(self, key: str) -> None:
        """Remove the file; a missing key is not an error."""
        path = self._path(validate_key(key))
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return
        except OSError as exc:
            raise StorageError(f"delete: {exc.strerror}") from exc

    def delete_prefix(self, prefix: str, batch_size: int = MAX_DELETE_BATCH) -> int:
        """Remove every file under `prefix` and then its empty directories; returns the count.

        `batch_size` is accepted for interface parity (files go one by one).
        Files still being written (temporary names) are left alone.
        """
        check_batch_size(batch_size)
        base = self._path(validate_prefix(prefix))
        if not base.is_dir():
            return 0
        deleted = 0
        try:
            for dirpath, _dirs, files in os.walk(base, topdown=False):
                for name in files:
                    if not name.startswith(TMP_PREFIX):
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(os.path.join(dirpath, name))
                            deleted += 1
                with contextlib.suppress(OSError):  # not empty: a put is in flight
                    os.rmdir(dirpath)
        except OSError as exc:
            raise StorageError(f"delete_prefix: {exc.strerror}") from exc
        return deleted

    def list_prefix(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every file under `prefix`; files still being written (temporary names) are not."""
        base = self._path(validate_prefix(prefix))
        try:
            for dirpath, _dirs, files in os.walk(base):
                for name in files:
                    if name.startswith(TMP_PREFIX):
                        continue
                    path = Path(dirpath, name)
                    try:
                        st = path.stat()
                    except FileNotFoundError:  # deleted since the walk saw it
                        continue
                    yield ObjectInfo(
                        key=path.relative_to(self.root).as_posix(),
                        size=st.st_size,
                        etag=self._etag(st),
                        content_type=DEFAULT_CONTENT_TYPE,
                        last_modified=datetime.fromtimestamp(st.st_mtime, UTC),
                    )
        except OSError as exc:
            raise StorageError(f"list_prefix: {exc.strerror}") from exc

    def ping(self) -> None:
        """The directory exists (created if missing) and is writable."""
        self.ensure_bucket()
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageUnavailable(f"{self.root} is not writable")
