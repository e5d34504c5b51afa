"""The embedded stack's directory backend: atomic files that stay inside their root."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from irisvue import create_app
from irisvue.storage import STORAGE_EXTENSION, LocalStorage, StorageError
from tests.support.storage import MiB, StreamBrokeError, failing_stream, pattern


def all_files(root) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files
    )


def test_objects_are_files_under_the_root(local_store, tmp_path):
    local_store.put("users/u1/captures/c1", [b"cipher", b"text"])

    assert (tmp_path / "objects" / "users" / "u1" / "captures" / "c1").read_bytes() == b"ciphertext"


def test_failed_put_leaves_no_file_not_even_a_temporary_one(local_store, tmp_path):
    local_store.put("a/keep", [b"old"])

    with pytest.raises(StreamBrokeError):
        local_store.put("a/keep", failing_stream(2 * MiB))
    with pytest.raises(StreamBrokeError):
        local_store.put("a/new", failing_stream(10))

    assert all_files(tmp_path / "objects") == ["a/keep"]
    with local_store.open("a/keep") as reader:
        assert reader.read() == b"old"  # the old version survives a failed overwrite


def test_delete_prefix_over_a_thousand_objects(local_store, tmp_path):
    folder = tmp_path / "objects" / "users" / "u1" / "captures"
    folder.mkdir(parents=True)
    for i in range(1100):  # written directly: put() fsyncs every file, which is slow here
        (folder / f"{i:04d}").write_bytes(b"x")
    local_store.put("users/u10/captures/0001", [b"other user"])
    (folder / ".tmp-inflight").write_bytes(b"an upload in progress")

    assert local_store.delete_prefix("users/u1/") == 1100

    assert all_files(tmp_path / "objects") == [
        "users/u1/captures/.tmp-inflight",  # its own put will finish or remove it
        "users/u10/captures/0001",
    ]
    (folder / ".tmp-inflight").unlink()
    assert local_store.delete_prefix("users/u1/") == 0
    assert not (tmp_path / "objects" / "users" / "u1").exists()
    with pytest.raises(ValueError):
        local_store.delete_prefix("users/u10/", batch_size=0)


def test_symlink_out_of_the_root_is_refused(local_store, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    local_store.ensure_bucket()
    (tmp_path / "objects" / "link").symlink_to(outside, target_is_directory=True)

    with pytest.raises(StorageError):
        local_store.put("link/escaped", [b"x"])
    assert list(outside.iterdir()) == []


def test_presigned_urls_are_not_offered(local_store):
    assert local_store.supports_presign is False
    local_store.put("k", [b"x"])
    with pytest.raises(NotImplementedError):
        local_store.presigned_get("k", timedelta(minutes=5))


def test_ping_fails_when_the_directory_cannot_be_created(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"not a directory")

    with pytest.raises(StorageError):
        LocalStorage(blocker / "objects").ping()


def test_embedded_stack_uses_the_instance_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("S3_ENDPOINT", raising=False)
    monkeypatch.setenv("IRISVUE_INSTANCE_PATH", str(tmp_path / "instance"))

    app = create_app()

    store = app.extensions[STORAGE_EXTENSION]
    assert store.backend == "local"
    assert str(store.root) == app.config["STORAGE_DIR"]
    response = app.test_client().get("/health/storage")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["checks"]["storage"]["backend"] == "local"
    store.put("x/y", pattern(100))
    assert store.stat("x/y").size == 100
