"""Bytes for the storage backends, and what really reached the bucket (a plain MinIO client)."""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Iterator

from flask import Flask
from minio import Minio

MiB = 1024 * 1024


def pattern(size: int, chunk: int = 64 * 1024, seed: bytes = b"irisvue") -> Iterator[bytes]:
    """`size` deterministic bytes as a generator of chunks (no len(), no file)."""
    block = hashlib.sha256(seed).digest() * (chunk // 32)
    sent = 0
    while sent < size:
        piece = block[: min(chunk, size - sent)]
        sent += len(piece)
        yield piece


def pattern_sha256(size: int) -> str:
    digest = hashlib.sha256()
    for piece in pattern(size):
        digest.update(piece)
    return digest.hexdigest()


class StreamBrokeError(Exception):
    """The caller's stream failing half-way (a client disconnect, a 413...)."""


def failing_stream(good_bytes: int):
    yield from pattern(good_bytes)
    raise StreamBrokeError("stream broke")


def objects_under(raw: Minio, bucket: str, prefix: str) -> list[str]:
    if not raw.bucket_exists(bucket):
        return []
    return [o.object_name for o in raw.list_objects(bucket, prefix=prefix, recursive=True)]


def read_object(raw: Minio, bucket: str, key: str) -> bytes:
    response = raw.get_object(bucket, key)
    try:
        return response.read()
    finally:
        response.close()
        response.release_conn()


def user_prefix(user_id: uuid.UUID) -> str:
    return f"users/{user_id}/captures/"


def put_extra_object(app: Flask, user_id) -> str:
    """An object under the user's prefix that no row points at (an export archive)."""
    from irisvue.storage import get_storage

    key = f"users/{user_id}/exports/{uuid.uuid4()}.zip"
    with app.app_context():
        get_storage().put(key, io.BytesIO(b"archive"), length=7)
    return key
