"""minio and urllib3 failures as the storage interface's errors."""

from __future__ import annotations

import urllib3
from minio.error import MinioException, S3Error, ServerError

from irisvue.storage.base import ObjectNotFound, StorageError, StorageUnavailable


def translate(op: str, exc: BaseException) -> StorageError | None:
    """The StorageError for a minio/urllib3 failure, or None for anything else."""
    if isinstance(exc, S3Error):
        if exc.code == "NoSuchKey":
            return ObjectNotFound(f"{op}: no such object")
        return StorageError(f"{op}: {exc.code}")
    if isinstance(exc, ServerError):
        return StorageUnavailable(f"{op}: HTTP {exc.status_code}")
    if isinstance(exc, MinioException):  # InvalidResponseError and the like
        return StorageError(f"{op}: unexpected response from the store")
    if isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError):
        return StorageUnavailable(f"{op}: {type(exc).__name__}")
    if isinstance(exc, OSError):  # minio: "stream having not enough data"
        return StorageError(f"{op}: {exc}")
    return None
