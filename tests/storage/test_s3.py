"""S3 specifics, checked with an independent MinIO client against the real endpoint."""

from __future__ import annotations

import hashlib
import io
import os
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from irisvue.storage import S3Storage, StorageError
from tests.support.storage import MiB, StreamBrokeError, failing_stream, pattern, pattern_sha256


def own_store(stack, bucket: str, **options) -> S3Storage:
    return S3Storage(
        stack.s3_endpoint,
        stack.s3_access_key,
        stack.s3_secret_key,
        bucket,
        region="us-east-1",
        **options,
    )


def test_streamed_put_really_reaches_the_endpoint_as_multipart(s3_store, raw_s3, prefix):
    size = 11 * MiB
    key = f"{prefix}capture.enc"

    result = s3_store.put(key, pattern(size), content_type="application/octet-stream")

    # A multipart upload's ETag is `md5-of-md5s-<parts>`: 5 + 5 + 1 MiB.
    assert result.etag.endswith("-3")
    response = raw_s3.get_object(s3_store.bucket, key)
    try:
        digest = hashlib.sha256()
        for chunk in response.stream(256 * 1024):
            digest.update(chunk)
    finally:
        response.close()
        response.release_conn()
    assert digest.hexdigest() == pattern_sha256(size)


def test_sse_s3_is_requested_when_configured(s3_store, raw_s3, stack, prefix):
    key = f"{prefix}encrypted.bin"
    s3_store.put(key, pattern(1024))

    header = raw_s3.stat_object(s3_store.bucket, key).metadata.get("x-amz-server-side-encryption")
    assert header == "AES256"
    info = s3_store.stat(key)
    assert info is not None and info.sse == "AES256"

    # The header comes from our request, not from a bucket default.
    plain = own_store(stack, s3_store.bucket, sse=False)
    plain.put(f"{prefix}plain.bin", pattern(1024))
    meta = raw_s3.stat_object(s3_store.bucket, f"{prefix}plain.bin").metadata
    assert meta.get("x-amz-server-side-encryption") is None


def test_content_type_is_stored(s3_store, raw_s3, prefix):
    key = f"{prefix}image.png"
    s3_store.put(key, io.BytesIO(b"\x89PNG\r\n\x1a\n"), length=8, content_type="image/png")

    assert raw_s3.stat_object(s3_store.bucket, key).content_type == "image/png"
    assert s3_store.stat(key).content_type == "image/png"
    with s3_store.open(key) as reader:
        assert reader.content_type == "image/png"


def test_presigned_get_serves_the_bytes_for_a_limited_time(s3_store, stack, prefix):
    key = f"{prefix}export.zip"
    s3_store.put(key, [b"export bytes"])
    before = datetime.now(UTC).replace(microsecond=0)

    url = s3_store.presigned_get(key, timedelta(minutes=5))

    assert urlsplit(url).hostname == "127.0.0.1"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"export bytes"
    # moto does not enforce the lifetime (a URL fetched after it expired still
    # answered 200 here), so check the signed parameter a real S3/MinIO enforces.
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["300"]
    assert query["X-Amz-Credential"][0].startswith(f"{stack.s3_access_key}/")
    signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert before <= signed_at <= datetime.now(UTC)
    assert query["X-Amz-Signature"][0]
    for bad in (timedelta(0), timedelta(days=7, seconds=1)):
        with pytest.raises(ValueError):
            s3_store.presigned_get(key, bad)


def test_failed_multipart_put_is_aborted(s3_store, raw_s3, prefix):
    key = f"{prefix}aborted.bin"

    with pytest.raises(StreamBrokeError):
        s3_store.put(key, failing_stream(7 * MiB))

    uploads = raw_s3._list_multipart_uploads(s3_store.bucket, prefix=prefix).uploads
    assert [u.object_name for u in uploads] == []
    assert s3_store.stat(key) is None


def test_delete_prefix_in_batches(s3_store, raw_s3, prefix):
    count = 250
    for i in range(count):
        raw_s3.put_object(s3_store.bucket, f"{prefix}objs/{i:04d}", io.BytesIO(b"z"), 1)
    sibling = f"{prefix}objs-sibling/keep"  # starts with the same characters, other folder
    raw_s3.put_object(s3_store.bucket, sibling, io.BytesIO(b"k"), 1)
    trace = io.StringIO()
    s3_store.client.trace_on(trace)
    try:
        started = time.perf_counter()
        deleted = s3_store.delete_prefix(f"{prefix}objs/", batch_size=100)
        elapsed = time.perf_counter() - started
    finally:
        s3_store.client.trace_off()

    assert deleted == count
    delete_requests = [line for line in trace.getvalue().splitlines() if "?delete" in line]
    assert len(delete_requests) == 3, delete_requests  # 100 + 100 + 50
    remaining = [o.object_name for o in raw_s3.list_objects(s3_store.bucket, prefix, True)]
    assert remaining == [sibling]
    assert s3_store.delete_prefix(f"{prefix}objs/") == 0
    print(f"delete_prefix of {count} objects: {elapsed:.2f}s")


def test_bucket_is_created_lazily_on_first_use(stack, raw_s3):
    bucket = f"irisvue-lazy-{uuid.uuid4().hex[:8]}"
    store = own_store(stack, bucket)  # construction touches nothing
    assert not raw_s3.bucket_exists(bucket)

    store.put("a/b", [b"hello"])

    assert raw_s3.bucket_exists(bucket)
    store.delete("a/b")
    raw_s3.remove_bucket(bucket)


def _random_chunks(data: bytes, sizes: tuple[int, ...] = (1, 4093, 65536, 1_000_003)):
    """`data` in irregular chunks, so part boundaries fall inside chunks."""
    position, turn = 0, 0
    while position < len(data):
        size = sizes[turn % len(sizes)]
        yield data[position : position + size]
        position, turn = position + size, turn + 1


@pytest.mark.parametrize(
    "size",
    [5 * MiB - 1, 5 * MiB, 10 * MiB, 17 * MiB + 12345],
    ids=["under-one-part", "exactly-one-part", "exactly-two-parts", "four-parts"],
)
def test_parts_in_flight_never_mix_bytes(s3_store, raw_s3, prefix, size):
    # Random bytes: a part buffer reused while its send is still in flight
    # would corrupt the object, which a periodic pattern could hide.
    data = os.urandom(size)
    key = f"{prefix}random.bin"

    result = s3_store.put(key, _random_chunks(data))

    assert result.size == size
    parts = -(-size // (5 * MiB))
    assert result.etag.endswith(f"-{parts}") == (size >= 5 * MiB)  # a full part: multipart
    response = raw_s3.get_object(s3_store.bucket, key)
    try:
        stored = response.read()
    finally:
        response.close()
        response.release_conn()
    assert hashlib.sha256(stored).digest() == hashlib.sha256(data).digest()


@pytest.mark.parametrize("declared", [6 * MiB, 12 * MiB])
def test_multipart_length_mismatch_is_refused_and_aborted(s3_store, raw_s3, prefix, declared):
    key = f"{prefix}mismatch.bin"

    with pytest.raises(StorageError, match="declared"):
        s3_store.put(key, pattern(11 * MiB), length=declared)

    uploads = raw_s3._list_multipart_uploads(s3_store.bucket, prefix=prefix).uploads
    assert [u.object_name for u in uploads] == []
    assert s3_store.stat(key) is None
