"""Our S3 backend against an endpoint that dies, comes back, or never answers."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from irisvue.storage import S3Storage, StorageError, StorageUnavailable
from tests.support.stack import ManagedProcess, start_s3

pytestmark = pytest.mark.slow

BOUND_SECONDS = 3.0  # against hanging, not a benchmark


@pytest.fixture
def own_s3(tmp_path) -> Iterator[ManagedProcess]:
    server = start_s3(tmp_path)
    try:
        yield server
    finally:
        server.stop()


def store_for(port: int, **options) -> S3Storage:
    return S3Storage(f"127.0.0.1:{port}", "key", "secret", "faults", region="us-east-1", **options)


def timed(operation, *args):
    started = time.perf_counter()
    try:
        return operation(*args)
    finally:
        elapsed = time.perf_counter() - started
        print(f"{operation.__name__}: {elapsed:.3f}s")  # shown with -s
        assert elapsed < BOUND_SECONDS, f"{operation.__name__} took {elapsed:.2f}s"


def test_dead_endpoint_fails_fast_as_unavailable_and_recovers(own_s3):
    store = store_for(own_s3.port)
    store.put("users/u1/a", [b"before"])

    own_s3.stop()
    with pytest.raises(StorageUnavailable):
        timed(store.ping)
    with pytest.raises(StorageUnavailable):
        timed(store.put, "users/u1/b", [b"x"])
    for operation, args in (
        (store.open, ("users/u1/a",)),
        (store.stat, ("users/u1/a",)),
        (store.delete, ("users/u1/a",)),
        (store.delete_prefix, ("users/u1/",)),
    ):
        with pytest.raises(StorageUnavailable):
            timed(operation, *args)

    own_s3.start()  # an in-memory server: it comes back empty, without the bucket
    timed(store.ping)  # recreates the bucket
    store.put("users/u1/c", [b"after"])
    with store.open("users/u1/c") as reader:
        assert reader.read() == b"after"


def test_bucket_removed_behind_our_back_is_an_error_then_recreated(own_s3):
    store = store_for(own_s3.port)
    store.put("k/1", [b"x"])
    store.delete("k/1")
    store.client.remove_bucket(store.bucket)

    with pytest.raises(StorageError) as caught:
        store.put("k/2", [b"y"])
    assert "NoSuchBucket" in str(caught.value)
    assert not isinstance(caught.value, StorageUnavailable)
    store.put("k/2", [b"y"])  # the next use ensures the bucket again
    assert store.stat("k/2").size == 1


def test_presign_needs_no_server_when_the_region_is_configured():
    store = store_for(1)  # nothing listens on port 1
    url = store.presigned_get("a/b", timedelta(minutes=1))
    assert "X-Amz-Signature=" in url


@pytest.fixture
def silent_port() -> Iterator[int]:
    """Accepts TCP connections, never answers: a hung server."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def test_ping_of_a_hung_endpoint_is_bounded_by_the_probe_timeout(silent_port):
    store = store_for(silent_port, probe_timeout=0.5)

    started = time.perf_counter()
    with pytest.raises(StorageUnavailable):
        store.ping()
    elapsed = time.perf_counter() - started
    print(f"ping of a hung endpoint: {elapsed:.3f}s")
    assert elapsed < 1.5
