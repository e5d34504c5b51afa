"""Baselines under the same gunicorn settings as the app (bench/health.py, auth.py, ab.py).

`GET /`: a bare Flask "hello" (no middleware, no database, no logging beyond
gunicorn's), the baseline every SPEC §7 ratio is taken against.

`GET /floor`: the least any database-backed authenticated read can do on
gunicorn + Flask: hello plus one indexed query by primary key on a
PostgreSQL connection kept per thread (autocommit: one round trip, no pool, no
ORM, no token check) and a small JSON answer. bench/auth.py measures it beside
`/api/v1/auth/me` to show what part of /me's latency is the platform's.

`POST /relay`: the least an upload through gunicorn + Flask can do: the request
body, unparsed, unhashed and unencrypted, handed to minio's `put_object` as a
stream of unknown length (5 MiB parts, uploaded in parallel as minio does), to
the S3 endpoint in `S3_ENDPOINT`. bench/upload.py measures it beside the
capture upload and the raw put, to show what part of the upload's time is the
extra hop's.

`POST /sealed`: the least an upload that meets SPEC §3 (captures) and §7 can do on
gunicorn + Flask: the request body read through `request.stream` 64 KiB at a
time, its SHA-256 taken (the capture's `sha256`), encrypted with Tink's
streaming AES-GCM-HKDF (one data key per process) and stored through
IrisVue's own S3 store (`irisvue/storage/s3_upload.py`: one part in flight,
as the memory budget allows, each part's SHA-256 signed over plain HTTP).
No multipart parsing, no image stripping, no token check, no database.
bench/upload.py measures it in the same rounds: if this floor is below the
budget, no gunicorn + Flask implementation of the upload can meet it on
that machine.
"""

from __future__ import annotations

import functools
import os
import threading
import uuid
from collections.abc import Iterator
from typing import Any

from flask import Flask, jsonify, request

app = Flask(__name__)
_local = threading.local()


@app.get("/")
def hello() -> str:
    """Hello, World!"""
    return "Hello, World!"


def _connection() -> Any:
    conn = getattr(_local, "conn", None)
    if conn is None:
        import psycopg2

        url = os.environ["DATABASE_URL"].replace("postgresql+psycopg2://", "postgresql://")
        conn = _local.conn = psycopg2.connect(url)
        conn.autocommit = True
    return conn


@app.get("/floor")
def floor() -> Any:
    """One indexed row from PostgreSQL, as JSON."""
    with _connection().cursor() as cur:
        cur.execute("SELECT id::text, email, created_at::text FROM users ORDER BY id LIMIT 1")
        row = cur.fetchone()
    return jsonify({"id": row[0], "email": row[1], "created_at": row[2]})


@functools.cache
def _store() -> Any:
    from irisvue.storage.s3 import S3Storage

    return S3Storage(
        os.environ["S3_ENDPOINT"],
        os.environ["S3_ACCESS_KEY"],
        os.environ["S3_SECRET_KEY"],
        os.environ["S3_BUCKET_NAME"],
        sse=os.environ.get("S3_SSE") == "s3",
    )


@app.post("/relay")
def relay() -> Any:
    """The body as received, streamed to S3; answers the object's key."""
    from minio.sse import SseS3

    key = f"bench-relay/{uuid.uuid4().hex}"
    sse = SseS3() if os.environ.get("S3_SSE") == "s3" else None
    _store().client.put_object(  # minio's own put_object, on the store's HTTP pool
        os.environ["S3_BUCKET_NAME"], key, request.stream, -1, part_size=5 * 1024 * 1024, sse=sse
    )
    return jsonify({"key": key}), 201


@functools.cache
def _data_key() -> Any:
    from irisvue.crypto.keys import generate_data_key

    return generate_data_key()


@app.post("/sealed")
def sealed() -> Any:
    """The body hashed, encrypted and stored as a capture is; answers the key and digest."""
    import hashlib

    from irisvue.crypto.streams import EncryptingReader

    key = f"bench-sealed/{uuid.uuid4().hex}"
    digest = hashlib.sha256()

    def plaintext() -> Iterator[bytes]:
        while chunk := request.stream.read(64 * 1024):
            digest.update(chunk)
            yield chunk

    ciphertext = EncryptingReader(_data_key(), plaintext(), key)
    try:
        _store().put(key, ciphertext)
    finally:
        ciphertext.close()
    return jsonify({"key": key, "sha256": digest.hexdigest()}), 201
