"""irisvue.crypto: master-key wrapping, streaming AEAD and bounded-memory encryption."""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
import textwrap
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from irisvue.config import ConfigError, parse_master_keys
from irisvue.crypto import (
    SEGMENT_SIZE,
    CryptoError,
    DataKey,
    DecryptionError,
    EncryptingReader,
    MasterKeyring,
    UnknownMasterKeyError,
    UnwrapError,
    WrappedKey,
    ciphertext_size,
    decrypting_reader,
    encrypting_writer,
    generate_data_key,
    generate_master_key,
    iter_decrypted,
    iter_encrypted,
)
from irisvue.crypto.__main__ import main

MB = 1024 * 1024
OBJECT_KEY = b"captures/7f1c/0b9e.jpg"
FIRST_SEGMENT_PLAINTEXT = SEGMENT_SIZE - 16 - 40  # Tink header and tag share the first segment


def encrypt(key: DataKey, plaintext: bytes, associated_data: bytes = OBJECT_KEY) -> bytes:
    sink = io.BytesIO()
    with encrypting_writer(key, sink, associated_data) as writer:
        for start in range(0, len(plaintext), 300_000):  # several writes, not one
            writer.write(plaintext[start : start + 300_000])
    assert not sink.closed  # the caller still owns the sink (e.g. to upload it)
    return sink.getvalue()


def decrypt(key: DataKey, ciphertext: bytes, associated_data: bytes = OBJECT_KEY) -> bytes:
    source = io.BytesIO(ciphertext)
    with decrypting_reader(key, source, associated_data) as reader:
        plaintext = b"".join(iter(lambda: reader.read(100_000), b""))
    assert not source.closed
    return plaintext


def pattern(size: int) -> bytes:
    """Recognisable plaintext: any leak of it into the ciphertext would be findable."""
    unit = b"IRIS-PLAINTEXT-0123456789abcdef"
    return (unit * (size // len(unit) + 1))[:size]


def keyring(*ids_and_materials: tuple[str, str]) -> MasterKeyring:
    return MasterKeyring.from_config(list(ids_and_materials))


@pytest.fixture(scope="module")
def data_key() -> DataKey:
    return generate_data_key()


@pytest.mark.parametrize(
    "size",
    [
        0,
        1,
        FIRST_SEGMENT_PLAINTEXT - 1,
        FIRST_SEGMENT_PLAINTEXT,
        FIRST_SEGMENT_PLAINTEXT + 1,
        MB - 1,
        MB,
        MB + 1,
        5 * MB,
    ],
)
def test_round_trip_and_exact_ciphertext_size(data_key: DataKey, size: int) -> None:
    plaintext = os.urandom(size)
    ciphertext = encrypt(data_key, plaintext)
    assert len(ciphertext) == ciphertext_size(size)
    assert decrypt(data_key, ciphertext) == plaintext

    via_reader = b"".join(iter_encrypted(data_key, io.BytesIO(plaintext), OBJECT_KEY))
    assert len(via_reader) == ciphertext_size(size)
    assert via_reader != ciphertext  # a fresh salt and nonce prefix per object
    assert b"".join(iter_decrypted(data_key, io.BytesIO(via_reader), OBJECT_KEY)) == plaintext


def test_ciphertext_hides_the_plaintext(data_key: DataKey) -> None:
    plaintext = pattern(3 * MB)
    ciphertext = encrypt(data_key, plaintext)
    assert ciphertext != plaintext
    assert b"IRIS-PLAINTEXT" not in ciphertext
    assert plaintext[:1000] not in ciphertext


def test_wrong_associated_data_fails(data_key: DataKey) -> None:
    ciphertext = encrypt(data_key, pattern(10_000), b"captures/a")
    with pytest.raises(DecryptionError):
        decrypt(data_key, ciphertext, b"captures/b")
    assert decrypt(data_key, ciphertext, b"captures/a") == pattern(10_000)


def test_str_associated_data_equals_its_utf8_bytes(data_key: DataKey) -> None:
    ciphertext = encrypt(data_key, b"abc", b"captures/\xc3\xa9")
    assert decrypt(data_key, ciphertext, "captures/é") == b"abc"  # type: ignore[arg-type]


def test_another_data_key_cannot_decrypt(data_key: DataKey) -> None:
    ciphertext = encrypt(data_key, pattern(1000))
    with pytest.raises(DecryptionError):
        decrypt(generate_data_key(), ciphertext)


@pytest.mark.parametrize("position", [0, 20, 39, 40, 500_000, SEGMENT_SIZE - 1, SEGMENT_SIZE, -1])
def test_any_tampered_byte_fails(data_key: DataKey, position: int) -> None:
    ciphertext = bytearray(encrypt(data_key, pattern(2 * MB)))
    ciphertext[position] ^= 0x01
    with pytest.raises(DecryptionError):
        decrypt(data_key, bytes(ciphertext))


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(lambda ct: ct[:-1], id="last-byte"),
        pytest.param(lambda ct: ct[: 2 * SEGMENT_SIZE], id="whole-last-segment"),
        pytest.param(lambda ct: ct + b"\x00", id="appended-byte"),
        pytest.param(lambda ct: ct[:SEGMENT_SIZE] + ct[2 * SEGMENT_SIZE :], id="dropped-segment"),
        pytest.param(lambda ct: b"", id="empty"),
    ],
)
def test_truncated_or_spliced_ciphertext_fails(data_key: DataKey, cut) -> None:
    ciphertext = encrypt(data_key, pattern(3 * MB))
    with pytest.raises(DecryptionError):
        decrypt(data_key, cut(ciphertext))


class _FailingAfter(io.RawIOBase):
    """Ciphertext that stops with `error` after `limit` bytes (a dropped connection)."""

    def __init__(self, data: bytes, limit: int, error: Exception) -> None:
        super().__init__()
        self._data, self._limit, self._error, self._pos = data, limit, error, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._pos >= self._limit:
            raise self._error
        end = self._limit if size < 0 else min(self._limit, self._pos + size)
        chunk, self._pos = self._data[self._pos : end], end
        return chunk


@pytest.mark.parametrize("limit", [0, 10, SEGMENT_SIZE + 5], ids=["header", "first", "second"])
def test_a_failing_source_is_its_own_error_not_tampering(data_key: DataKey, limit: int) -> None:
    """Storage dropping mid-read is a storage failure (retry), not an integrity one."""
    from irisvue.storage.base import StorageUnavailable

    ciphertext = encrypt(data_key, pattern(3 * MB))
    source = _FailingAfter(ciphertext, limit, StorageUnavailable("read interrupted"))
    with pytest.raises(StorageUnavailable, match="read interrupted"):
        b"".join(iter_decrypted(data_key, source, OBJECT_KEY))


# --- master keys: wrapping, user binding, rotation -------------------------------------------


def test_wrap_unwrap_is_bound_to_the_user(data_key: DataKey) -> None:
    ring = keyring(("k1", generate_master_key()))
    alice, bob = uuid.uuid4(), uuid.uuid4()
    wrapped = ring.wrap(data_key, alice)
    assert wrapped.master_key_id == "k1"
    assert isinstance(wrapped.ciphertext, bytes)
    assert "ciphertext" not in repr(wrapped) and repr(data_key) == "<DataKey>"

    ciphertext = encrypt(data_key, b"iris")
    assert decrypt(ring.unwrap(wrapped, alice), ciphertext) == b"iris"
    # the same user whether the caller holds a UUID or its string spellings
    assert decrypt(ring.unwrap(wrapped, str(alice).upper()), ciphertext) == b"iris"
    with pytest.raises(UnwrapError):
        ring.unwrap(wrapped, bob)
    with pytest.raises(UnwrapError):
        ring.unwrap(WrappedKey("k1", wrapped.ciphertext[:-1] + b"\x00"), alice)


def test_wrong_material_under_a_known_id_fails_to_unwrap(data_key: DataKey) -> None:
    user = uuid.uuid4()
    wrapped = keyring(("k1", generate_master_key())).wrap(data_key, user)
    with pytest.raises(UnwrapError, match="'k1'"):
        keyring(("k1", generate_master_key())).unwrap(wrapped, user)


def test_rotation_unwraps_with_old_key_and_rewraps_under_new_primary(data_key: DataKey) -> None:
    old_material, new_material = generate_master_key(), generate_master_key()
    user = uuid.uuid4()
    ciphertext = encrypt(data_key, b"before rotation")
    wrapped_old = keyring(("2025", old_material)).wrap(data_key, user)

    rotating = keyring(("2026", new_material), ("2025", old_material))
    assert rotating.primary_id == "2026" and rotating.key_ids == ("2026", "2025")
    assert decrypt(rotating.unwrap(wrapped_old, user), ciphertext) == b"before rotation"
    assert rotating.wrap(data_key, user).master_key_id == "2026"

    wrapped_new = rotating.rewrap(wrapped_old, user)
    assert wrapped_new.master_key_id == "2026"
    assert wrapped_new.ciphertext != wrapped_old.ciphertext
    retired = keyring(("2026", new_material))  # the old key has left the configuration
    assert decrypt(retired.unwrap(wrapped_new, user), ciphertext) == b"before rotation"
    with pytest.raises(UnknownMasterKeyError, match="'2025'"):
        retired.unwrap(wrapped_old, user)


def test_unknown_master_key_id_is_a_clear_error(data_key: DataKey) -> None:
    ring = keyring(("k1", generate_master_key()))
    wrapped = ring.wrap(data_key, "user-1")
    with pytest.raises(UnknownMasterKeyError, match=r"'gone'.*MASTER_KEYS"):
        ring.unwrap(WrappedKey("gone", wrapped.ciphertext), "user-1")
    assert issubclass(UnknownMasterKeyError, CryptoError)


# --- configuration --------------------------------------------------------------------------


def test_config_formats_are_accepted() -> None:
    raw = os.urandom(32)
    unpadded = generate_master_key()
    padded = base64.urlsafe_b64encode(raw).decode()
    standard = base64.b64encode(raw).decode()  # `openssl rand -base64 32`
    ring = MasterKeyring.from_config(parse_master_keys(f"a:{unpadded},b:{padded},c:{standard}"))
    assert ring.key_ids == ("a", "b", "c")
    # b and c are one key in two alphabets: what one wraps, the other unwraps
    wrapped = keyring(("b", padded)).wrap(generate_data_key(), "u")
    assert isinstance(
        keyring(("c", standard)).unwrap(WrappedKey("c", wrapped.ciphertext), "u"), DataKey
    )


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([], "at least one master key"),
        ([("k1", base64.urlsafe_b64encode(os.urandom(16)).decode())], "16 bytes, needs 32"),
        ([("k1", base64.urlsafe_b64encode(os.urandom(48)).decode())], "48 bytes, needs 32"),
        ([("k1", "not base64 at all!")], "not base64"),
        ([("k1", "abcde")], "not valid base64"),
        ([("k1", "A" * 43)], "not random"),
        ([("bad id", generate_master_key())], "key id 'bad id'"),
        ([("k1", generate_master_key()), ("k1", generate_master_key())], "unique"),
    ],
)
def test_bad_master_keys_raise_config_error(pairs, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as excinfo:
        MasterKeyring.from_config(pairs)
    for _, material in pairs:
        assert material not in str(excinfo.value)  # never echo key material into logs


def test_cli_generates_a_usable_master_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate-master-key", "--id", "prod-2026"]) == 0
    entry = capsys.readouterr().out.strip()
    ring = MasterKeyring.from_config(parse_master_keys(entry))
    assert ring.primary_id == "prod-2026"
    assert main(["generate-master-key"]) == 0
    assert len(base64.urlsafe_b64decode(capsys.readouterr().out.strip() + "=")) == 32


# --- EncryptingReader: the upload path -------------------------------------------------------


def test_encrypting_reader_short_reads_counters_and_empty_chunks(data_key: DataKey) -> None:
    chunks = [b"", pattern(70_000), b"", b"x", pattern(MB + 3), b""]  # b"" is not EOF
    reader = EncryptingReader(data_key, iter(chunks), OBJECT_KEY)
    pieces = []
    for size in [1, 7, 5 * MB, 4096, 3 * MB, 10, 5 * MB, 5 * MB]:  # like minio's read_part_data
        piece = reader.read(size)
        assert len(piece) <= size
        pieces.append(piece)
    assert reader.read(10) == b""
    plaintext = b"".join(chunks)
    assert reader.plaintext_bytes == len(plaintext)
    assert reader.ciphertext_bytes == ciphertext_size(len(plaintext)) == len(b"".join(pieces))
    assert decrypt(data_key, b"".join(pieces)) == plaintext
    reader.close()
    with pytest.raises(ValueError):
        reader.read(1)


def test_encrypting_reader_readall_and_readinto(data_key: DataKey) -> None:
    plaintext = pattern(2 * MB + 17)
    reader = EncryptingReader(data_key, io.BytesIO(plaintext), OBJECT_KEY)
    assert decrypt(data_key, reader.read()) == plaintext  # read(-1): everything
    buffered = io.BufferedReader(EncryptingReader(data_key, io.BytesIO(plaintext), OBJECT_KEY))
    assert decrypt(data_key, buffered.read()) == plaintext  # readinto through BufferedReader


def test_encrypting_reader_propagates_a_failing_source(data_key: DataKey) -> None:
    def broken() -> Iterator[bytes]:
        yield pattern(2 * MB)
        raise ConnectionResetError("client went away")

    reader = EncryptingReader(data_key, broken(), OBJECT_KEY)
    with pytest.raises(ConnectionResetError):
        while reader.read(MB):
            pass
    reader.close()


def generated_plaintext(total: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    block = os.urandom(chunk)
    for _ in range(total // chunk):
        yield block


def test_encrypting_reader_memory_is_bounded_on_50_mb(data_key: DataKey) -> None:
    total = 50 * MB
    tracemalloc.start()
    try:
        reader = EncryptingReader(data_key, generated_plaintext(total), OBJECT_KEY)
        while reader.read(5 * MB):  # minio reads up to a whole part at a time
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reader.ciphertext_bytes == ciphertext_size(total)
    print(f"\nEncryptingReader 50 MB: tracemalloc peak {peak / MB:.2f} MB")
    assert peak < 8 * MB


def test_decrypting_memory_is_bounded_on_50_mb(data_key: DataKey, tmp_path: Path) -> None:
    total = 50 * MB
    path = tmp_path / "object.bin"  # ciphertext only: plaintext never touches the disk
    with path.open("wb") as sink:
        for chunk in iter_encrypted(data_key, generated_plaintext(total), OBJECT_KEY):
            sink.write(chunk)
    tracemalloc.start()
    try:
        with path.open("rb") as source:
            size = sum(len(c) for c in iter_decrypted(data_key, source, OBJECT_KEY))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size == total
    print(f"\ndecrypt 50 MB: tracemalloc peak {peak / MB:.2f} MB")
    assert peak < 8 * MB


def test_encrypting_reader_process_memory_is_bounded() -> None:
    """tracemalloc misses Tink's C++ buffers: check the process's peak RSS as well."""
    script = textwrap.dedent(
        """
        import os, resource
        from irisvue.crypto import EncryptingReader, generate_data_key
        key = generate_data_key()
        block = os.urandom(65536)
        def source(n):
            for _ in range(n):
                yield block
        def run(n):
            reader = EncryptingReader(key, source(n), b"k")
            while reader.read(5 * 1024 * 1024):
                pass
        run(64)  # warm up: 4 MB
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        run(1600)  # 100 MB
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print((after - before) // 1024)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    growth_mb = int(result.stdout.strip())
    print(f"\nEncryptingReader 100 MB: peak RSS growth {growth_mb} MB")
    assert growth_mb < 16  # the spec's budget per concurrent upload


def test_report_throughput(data_key: DataKey) -> None:
    """Measured, not asserted (no timing asserts in tests)."""
    total = 50 * MB
    start = time.perf_counter()
    ciphertext = b"".join(iter_encrypted(data_key, generated_plaintext(total), OBJECT_KEY))
    encrypt_s = time.perf_counter() - start
    start = time.perf_counter()
    size = sum(len(c) for c in iter_decrypted(data_key, io.BytesIO(ciphertext), OBJECT_KEY))
    decrypt_s = time.perf_counter() - start
    assert size == total
    print(f"\nencrypt {total / MB / encrypt_s:.0f} MB/s, decrypt {total / MB / decrypt_s:.0f} MB/s")
