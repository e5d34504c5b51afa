"""Keys and prefixes: an id from a URL can never address another folder."""

from __future__ import annotations

from datetime import timedelta

import pytest

from irisvue.storage import InvalidKeyError, validate_key, validate_prefix

BAD_KEYS = [
    "",
    "/abs/key",
    "../escape",
    "a/../../escape",
    "a/..",
    "a/./b",
    "a//b",
    "a/",
    ".hidden",
    "a/.tmp-123",
    "a\\..\\b",
    "a b",
    "a\nb",
    "a\x00b",
    "é",
    "x" * 1025,
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_are_refused_before_any_io(any_store, key):
    store = any_store
    with pytest.raises(InvalidKeyError):
        store.put(key, [b"x"])
    for operation in (store.open, store.stat, store.delete):
        with pytest.raises(InvalidKeyError):
            operation(key)
    if store.supports_presign:
        with pytest.raises(InvalidKeyError):
            store.presigned_get(key, timedelta(minutes=1))


@pytest.mark.parametrize("prefix", ["", "/", "a", "../", "a/../", "/a/", "a//", ".x/"])
def test_bad_prefixes_are_refused(any_store, prefix):
    with pytest.raises(InvalidKeyError):
        any_store.delete_prefix(prefix)


def test_good_keys():
    for key in ("users/5f0c/captures/9a1b", "exports/2026-11-23_a=b+c@d.zip", "k"):
        assert validate_key(key) == key
    assert validate_prefix("users/5f0c/") == "users/5f0c/"
