"""S3 part uploads seen on the wire: what each part's signature covers, when a
multipart upload starts, and that a failed one is never completed. A proxy
between our store and the S3 endpoint records every request our client sends."""

from __future__ import annotations

import hashlib
import os
import re
import threading
import uuid
from collections.abc import Iterator

import pytest

from irisvue.storage import S3Storage, StorageError
from tests.support.faults import TcpProxy
from tests.support.storage import MiB, StreamBrokeError, failing_stream, pattern

CREATE = re.compile(rb"^POST /[^ ]+\?uploads[ =&]")


class RecordingProxy(TcpProxy):
    """Passes everything on; keeps what each connection sent towards the store."""

    def __init__(self, upstream: str) -> None:
        self._sent: dict[int, bytearray] = {}  # per connection, in the order they opened
        self._record_lock = threading.Lock()
        self.created = threading.Event()  # a multipart upload was asked for
        super().__init__(upstream)

    def forward(self, data: bytes, source, sink, upstream: bool) -> bool:
        if upstream:
            with self._record_lock:
                self._sent.setdefault(id(source), bytearray()).extend(data)
                if CREATE.search(data):
                    self.created.set()
        return super().forward(data, source, sink, upstream)

    def requests(self) -> list[tuple[str, dict[str, str], bytes]]:
        """(request line, headers, body) of every request, connection by connection."""
        found = []
        with self._record_lock:
            streams = [bytes(sent) for sent in self._sent.values()]
        for stream in streams:
            while stream:
                head, _, rest = stream.partition(b"\r\n\r\n")
                line, *fields = head.decode("latin-1").split("\r\n")
                headers = {k.lower(): v.strip() for k, _, v in (f.partition(":") for f in fields)}
                length = int(headers.get("content-length", "0"))
                found.append((line, headers, rest[:length]))
                stream = rest[length:]
        return found


@pytest.fixture
def proxy(stack) -> Iterator[RecordingProxy]:
    recording = RecordingProxy(stack.s3_endpoint)
    try:
        yield recording
    finally:
        recording.cut()


@pytest.fixture
def proxied_store(stack, proxy: RecordingProxy) -> S3Storage:
    return S3Storage(
        proxy.endpoint,
        stack.s3_access_key,
        stack.s3_secret_key,
        stack.s3_bucket,
        region="us-east-1",
    )


def _key() -> str:
    return f"tests/parts/{uuid.uuid4().hex}.bin"


def _uploads_left(raw_s3, bucket: str, key: str) -> list[str]:
    return [u.object_name for u in raw_s3._list_multipart_uploads(bucket, prefix=key).uploads]


def test_every_part_is_signed_over_the_bytes_it_carries(proxied_store, proxy):
    # Over plain HTTP the signature covers x-amz-content-sha256, and nothing
    # else binds the body to it: each part's hash, computed while the part
    # fills, must be the hash of exactly the bytes that went out.
    data = os.urandom(11 * MiB + 4321)
    chunks = (data[i : i + 100_003] for i in range(0, len(data), 100_003))

    result = proxied_store.put(_key(), chunks)

    puts = [request for request in proxy.requests() if "partNumber=" in request[0]]
    assert [len(body) for _, _, body in puts] == [5 * MiB, 5 * MiB, MiB + 4321]
    for line, headers, body in puts:
        assert headers["x-amz-content-sha256"] == hashlib.sha256(body).hexdigest(), line
        assert "x-amz-content-sha256" in headers["authorization"]  # a signed header
    assert b"".join(body for _, _, body in puts) == data
    assert result.etag.endswith("-3")


def test_no_multipart_upload_starts_before_a_part_is_full(proxied_store, proxy):
    # A small object is one PUT: the multipart upload (three requests) is only
    # asked for once the stream has proved larger than a part.
    seen_early: list[bool] = []

    def source() -> Iterator[bytes]:
        yield from pattern(5 * MiB - 1)
        seen_early.append(proxy.created.is_set())
        yield from pattern(MiB)

    proxied_store.put(_key(), source())

    assert seen_early == [False]
    assert proxy.created.is_set()


@pytest.mark.parametrize("good_bytes", [7 * MiB, 12 * MiB], ids=["second-part", "third-part"])
def test_an_upload_whose_source_fails_is_aborted_and_never_completed(
    proxied_store, proxy, raw_s3, stack, good_bytes
):
    key = _key()

    with pytest.raises(StreamBrokeError):
        proxied_store.put(key, failing_stream(good_bytes))

    assert proxy.created.is_set()  # it had started
    assert _uploads_left(raw_s3, stack.s3_bucket, key) == []
    assert proxied_store.stat(key) is None
    assert not [line for line, _, _ in proxy.requests() if "POST" in line and "uploadId" in line]


def test_an_upload_to_a_store_that_is_gone_fails_without_hanging(proxied_store, proxy):
    proxied_store.ensure_bucket()  # the store was there
    proxy.cut()

    with pytest.raises(StorageError):
        proxied_store.put(_key(), pattern(12 * MiB))
