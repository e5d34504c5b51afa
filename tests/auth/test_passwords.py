"""verify_on_one_thread against argon2-cffi itself: same answers, same refusals."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError
from argon2.low_level import hash_secret

from irisvue.auth.passwords import MAX_LENGTH, verify_on_one_thread

# Small memory keeps the test fast; lanes 1, 2 and 4 change the hash, threads must not.
PROFILES = [
    {"time_cost": 1, "memory_cost": 64, "parallelism": 1},
    {"time_cost": 2, "memory_cost": 256, "parallelism": 2},
    {"time_cost": 3, "memory_cost": 512, "parallelism": 4},
    {"time_cost": 1, "memory_cost": 128, "parallelism": 4, "hash_len": 16, "salt_len": 8},
]


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("password", ["correct horse 1", "", "påsswörd-ß-🔑"])
def test_it_accepts_what_argon2_cffi_hashed_and_refuses_anything_else(profile, password):
    hashed = PasswordHasher(**profile).hash(password)
    assert verify_on_one_thread(hashed, password) is True
    assert verify_on_one_thread(hashed, password + "x") is False
    assert verify_on_one_thread(hashed, password.upper() + "!") is False


def test_a_changed_hash_or_salt_is_a_mismatch():
    hashed = PasswordHasher(time_cost=1, memory_cost=64, parallelism=2).hash("pw-123456")
    head, salt, digest = hashed.rsplit("$", 2)
    flipped = "A" if digest[0] != "A" else "B"
    assert verify_on_one_thread(f"{head}${salt}${flipped}{digest[1:]}", "pw-123456") is False
    other_salt = "A" if salt[0] != "A" else "B"
    assert verify_on_one_thread(f"{head}${other_salt}{salt[1:]}${digest}", "pw-123456") is False


@pytest.mark.parametrize("hash_type", [Type.I, Type.D])
def test_other_argon2_types_are_verified_by_argon2_cffi(hash_type):
    encoded = hash_secret(b"pw-123456", b"saltsaltsalt", 1, 64, 2, 32, hash_type).decode()
    assert verify_on_one_thread(encoded, "pw-123456") is True
    assert verify_on_one_thread(encoded, "pw-1234567") is False


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "not a hash",
        "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ",
        "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$!!notbase64!!",
        "$argon2id$v=19$m=64,t=1$c2FsdHNhbHQ$c2FsdHNhbHQ",
        "$argon2x$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$c2FsdHNhbHQ",
    ],
)
def test_malformed_hashes_are_invalid_not_a_crash(encoded):
    with pytest.raises(InvalidHashError):
        verify_on_one_thread(encoded, "pw-123456")


def test_every_password_length_up_to_the_maximum_verifies():
    # The cffi buffers must outlive the call: freed too early, lengths 17-23 and
    # 33-39 read reused memory and never matched.
    hasher = PasswordHasher(time_cost=1, memory_cost=64, parallelism=4)
    for length in range(0, MAX_LENGTH + 1):
        password = "ab1é"[length % 4] * length
        assert verify_on_one_thread(hasher.hash(password), password), length
