"""Object storage behind one small interface (`Storage`).

`S3_ENDPOINT` set → `S3Storage` (MinIO SDK, any S3 endpoint); unset → the
embedded stack's `LocalStorage` in `STORAGE_DIR`. The app's backend lives in
`app.extensions[STORAGE_EXTENSION]`; `get_storage()` returns it.

Contract shared by both backends:
- keys are `segment(/segment)*` from `[A-Za-z0-9._=+@-]`, no segment starting
  with a dot, ≤ 1024 bytes; anything else raises `InvalidKeyError` (a ValueError);
  prefixes for `delete_prefix` must end in `/`;
- `put` streams in bounded memory and is all-or-nothing; exceptions raised by
  the caller's stream propagate unchanged;
- `stat` returns None for a missing key, `open` raises `ObjectNotFound`,
  `delete` of a missing key is a no-op;
- store failures raise `StorageError`, with `StorageUnavailable` when the store
  cannot be reached (answer 503).

Creating the app never touches the store: the bucket is ensured lazily.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app

from irisvue.storage.base import (
    DEFAULT_CONTENT_TYPE,
    DeleteIncompleteError,
    InvalidKeyError,
    ObjectInfo,
    ObjectNotFound,
    ObjectReader,
    PutResult,
    Storage,
    StorageError,
    StorageUnavailable,
    validate_key,
    validate_prefix,
)
from irisvue.storage.local import LocalStorage
from irisvue.storage.s3 import S3Storage

STORAGE_EXTENSION = "irisvue.storage"

__all__ = [
    "DEFAULT_CONTENT_TYPE",
    "STORAGE_EXTENSION",
    "DeleteIncompleteError",
    "InvalidKeyError",
    "LocalStorage",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectReader",
    "PutResult",
    "S3Storage",
    "Storage",
    "StorageError",
    "StorageUnavailable",
    "get_storage",
    "init_storage",
    "make_storage",
    "validate_key",
    "validate_prefix",
]


def make_storage(config: Mapping[str, Any]) -> Storage:
    """The backend the configuration asks for; touches no network."""
    if config.get("S3_ENDPOINT"):
        return S3Storage(
            config["S3_ENDPOINT"],
            config.get("S3_ACCESS_KEY", ""),
            config.get("S3_SECRET_KEY", ""),
            config["S3_BUCKET_NAME"],
            secure=bool(config.get("S3_SECURE")),
            region=config.get("S3_REGION"),
            sse=config.get("S3_SSE") == "s3",
            probe_timeout=float(config.get("HEALTH_TIMEOUT_SECONDS", 1.0)),
        )
    return LocalStorage(config["STORAGE_DIR"])


def init_storage(app: Flask) -> None:
    app.extensions[STORAGE_EXTENSION] = make_storage(app.config)


def get_storage() -> Storage:
    """The current app's storage backend."""
    return current_app.extensions[STORAGE_EXTENSION]
