"""Capture uploads as the benchmarks send them: streamed multipart POSTs, raw puts, floors."""

from __future__ import annotations

import http.client
import io
import json
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

from .client import API, expect, http_json
from .images import form_frame

S3_BUCKET = "irisvue-bench"
SEND_CHUNK = 256 * 1024


def upload(
    base: str, token: str, data: bytes, path: str = f"{API}/captures/"
) -> tuple[float, dict[str, Any]]:
    """POST one multipart upload, streamed from memory; returns (seconds, response body)."""
    head, tail, content_type = form_frame()
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=300)
    started = time.perf_counter()
    try:
        conn.putrequest("POST", path)
        conn.putheader("Authorization", f"Bearer {token}")
        conn.putheader("Content-Type", content_type)
        conn.putheader("Content-Length", str(len(head) + len(data) + len(tail)))
        conn.endheaders()
        conn.send(head)
        view = memoryview(data)
        for offset in range(0, len(data), SEND_CHUNK):
            conn.send(view[offset : offset + SEND_CHUNK])
        conn.send(tail)
        response = conn.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - started
    finally:
        conn.close()
    if response.status != 201:
        raise SystemExit(f"bench: upload answered {response.status}: {body[:300]!r}")
    return elapsed, json.loads(body)


def delete_capture(base: str, token: str, capture_id: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    status, body = http_json("DELETE", f"{base}{API}/captures/{capture_id}", None, headers)
    expect(status, body, 204, "DELETE capture")


def raw_put(client: Any, data: bytes, sse: Any, parallel: int = 3) -> float:
    """minio's `put_object` of bytes in memory; by default 3 parts in flight (minio's own)."""
    key = f"bench-raw/{uuid.uuid4().hex}"
    started = time.perf_counter()
    client.put_object(
        S3_BUCKET,
        key,
        io.BytesIO(data),
        len(data),
        content_type="image/png",
        sse=sse,
        num_parallel_uploads=parallel,
    )
    elapsed = time.perf_counter() - started
    client.remove_object(S3_BUCKET, key)
    return elapsed


def floor_upload(base: str, client: Any, data: bytes, path: str = "/relay") -> float:
    """The same request to a floor of bench/hello_app.py (`/relay`, `/sealed`); object deleted."""
    seconds, body = upload(base, "-", data, path)
    client.remove_object(S3_BUCKET, body["key"])
    return seconds
