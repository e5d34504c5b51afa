"""Behaviour both backends share, run against the real S3 endpoint and a local directory."""

from __future__ import annotations

import hashlib
import io

import pytest

from irisvue.storage import ObjectNotFound, StorageError
from tests.support.storage import MiB, pattern, pattern_sha256


class StreamBrokeError(Exception):
    """The caller's stream failing half-way (a client disconnect, a 413...)."""


def failing_stream(good_bytes: int):
    yield from pattern(good_bytes)
    raise StreamBrokeError("stream broke")


def test_streamed_round_trip_without_length(store, prefix):
    size = 12 * MiB + 12345  # several 5 MiB parts, last one short
    key = f"{prefix}big.bin"

    result = store.put(key, pattern(size))

    assert result.size == size
    assert result.key == key and result.etag
    info = store.stat(key)
    assert info is not None
    assert info.size == size and info.etag == result.etag
    digest = hashlib.sha256()
    with store.open(key) as reader:
        assert reader.size == size
        for chunk in reader:
            assert 0 < len(chunk) <= reader.chunk_size
            digest.update(chunk)
    assert reader.closed
    assert digest.hexdigest() == pattern_sha256(size)


def test_file_like_with_known_length(store, prefix):
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
    key = f"{prefix}small.png"

    result = store.put(key, io.BytesIO(data), length=len(data), content_type="image/png")

    assert result.size == len(data)
    with store.open(key) as reader:
        assert reader.read() == data


def test_reader_is_a_binary_file(store, prefix):
    key = f"{prefix}file.bin"
    store.put(key, [b"abc", b"", b"defgh", b"ij"])

    reader = store.open(key)
    try:
        assert reader.read(4) == b"abcd"
        buffer = bytearray(3)
        assert reader.readinto(buffer) == 3 and bytes(buffer) == b"efg"
        assert reader.read() == b"hij"
        assert reader.read(10) == b""
    finally:
        reader.close()
    with pytest.raises(ValueError):
        reader.read(1)
    # An abandoned half-read reader is closed too (the connection is dropped, not reused).
    half = store.open(key)
    assert half.read(1) == b"a"
    half.close()
    assert half.closed


def test_failed_put_leaves_nothing_and_keeps_the_callers_error(store, prefix):
    key = f"{prefix}broken.bin"

    with pytest.raises(StreamBrokeError):
        store.put(key, failing_stream(6 * MiB))  # fails after the first part went out

    assert store.stat(key) is None
    with pytest.raises(ObjectNotFound):
        store.open(key)


def test_shorter_stream_than_declared_length_is_refused(store, prefix):
    key = f"{prefix}short.bin"

    with pytest.raises(StorageError):
        store.put(key, io.BytesIO(b"only eleven"), length=100)

    assert store.stat(key) is None


def test_overwrite_replaces_the_object(store, prefix):
    key = f"{prefix}same.bin"
    store.put(key, [b"first version"])
    store.put(key, [b"second"])

    with store.open(key) as reader:
        assert reader.read() == b"second"


def test_delete_and_missing_keys(store, prefix):
    key = f"{prefix}gone.bin"
    store.put(key, [b"bytes"])
    assert store.stat(key) is not None

    store.delete(key)

    assert store.stat(key) is None
    with pytest.raises(ObjectNotFound):
        store.open(key)
    store.delete(key)  # deleting a missing key is not an error
    assert store.stat(f"{prefix}never-written") is None


def test_ping(store):
    store.ping()
