"""Password hashing (Argon2id, RFC 9106 profile) and the password rules.

Argon2 is memory-hard by design: each hash in flight holds ARGON2_MEMORY_COST
KiB (64 MiB by default). A per-process semaphore bounds how many run at once
(ARGON2_MAX_CONCURRENCY, default the usable CPU cores divided among the web
workers), so a burst of logins queues for a core instead of multiplying a
worker's memory.

Verification computes the hash's lanes on one thread (`verify_on_one_thread`):
the hashes in flight already fill the cores, so one thread per lane only adds
thread start-ups and cache contention (README, "What limits each figure now").
"""

from __future__ import annotations

import base64
import hmac
import secrets
import threading
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from argon2 import PasswordHasher, Type, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.low_level import ARGON2_VERSION, core, error_to_str, ffi, lib, verify_secret
from flask import Flask, current_app

from irisvue.settings import auth_settings

MIN_LENGTH = 8
MAX_LENGTH = 128
PASSWORDS_EXTENSION = "irisvue.passwords"


def password_defaults() -> dict[str, int]:
    """The Argon2 settings' defaults (irisvue.settings): RFC 9106, low memory."""
    settings = auth_settings({})
    return {name: value for name, value in settings.items() if name.startswith("ARGON2_")}


@dataclass
class Passwords:
    hasher: PasswordHasher
    slots: threading.BoundedSemaphore
    dummy_hash: str

    def hash(self, password: str) -> str:
        with self.slots:
            return self.hasher.hash(password)

    def verify(self, hashed: str | None, password: str) -> bool:
        """True when `password` matches; an account without a hash costs the same time."""
        with self.slots:
            try:
                return verify_on_one_thread(hashed or self.dummy_hash, password) and bool(hashed)
            except (VerificationError, InvalidHashError):
                return False

    def needs_rehash(self, hashed: str) -> bool:
        try:
            return self.hasher.check_needs_rehash(hashed)
        except InvalidHashError:
            return True


def verify_on_one_thread(encoded: str, password: str) -> bool:
    """argon2-cffi's `PasswordHasher.verify`, with the lanes computed on one thread.

    The lanes (ARGON2_PARALLELISM) are part of the hash and stay as stored; the
    thread count is not, and libargon2 gives the same bytes for any
    (`tests/auth/test_passwords.py`). argon2-cffi ties threads to lanes, so this
    calls its documented `argon2.low_level.core` with a context of its own. Only
    what argon2-cffi's defaults produce (Argon2id, version 19) takes this path;
    any other hash is verified by argon2-cffi as stored.
    """
    params = extract_parameters(encoded)  # InvalidHashError when malformed
    if params.type is not Type.ID or params.version != ARGON2_VERSION:
        try:
            return verify_secret(encoded.encode("ascii"), password.encode("utf-8"), params.type)
        except VerifyMismatchError:
            return False
    salt, expected = (_b64decode(part) for part in encoded.rsplit("$", 2)[1:])
    # The context's pointers do not keep cffi buffers alive: each needs a name here.
    secret = password.encode("utf-8")
    out = ffi.new("uint8_t[]", len(expected))
    pwd = ffi.new("uint8_t[]", secret)
    salt_buffer = ffi.new("uint8_t[]", salt)
    context = ffi.new(
        "argon2_context *",
        {
            "out": out,
            "outlen": len(expected),
            "pwd": pwd,
            "pwdlen": len(secret),
            "salt": salt_buffer,
            "saltlen": len(salt),
            "secret": ffi.NULL,
            "secretlen": 0,
            "ad": ffi.NULL,
            "adlen": 0,
            "t_cost": params.time_cost,
            "m_cost": params.memory_cost,
            "lanes": params.parallelism,
            "threads": 1,
            "version": params.version,
            "allocate_cbk": ffi.NULL,
            "free_cbk": ffi.NULL,
            "flags": lib.ARGON2_DEFAULT_FLAGS,
        },
    )
    result = core(context, Type.ID.value)
    if result != lib.ARGON2_OK:
        raise VerificationError(error_to_str(result))
    return hmac.compare_digest(bytes(ffi.buffer(out, len(expected))), expected)


def _b64decode(text: str) -> bytes:
    """PHC strings carry unpadded standard base64."""
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except ValueError:
        raise InvalidHashError from None


# One per parameter set and process: the semaphore must be shared by every app
# object of the process (tests build many), the dummy hash is costly to make.
_instances: dict[tuple[int, int, int, int], Passwords] = {}
_instances_lock = threading.Lock()


def _build(time_cost: int, memory_cost: int, parallelism: int, concurrency: int) -> Passwords:
    key = (time_cost, memory_cost, parallelism, concurrency)
    with _instances_lock:
        found = _instances.get(key)
        if found is None:
            hasher = PasswordHasher(
                time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism
            )
            found = Passwords(
                hasher=hasher,
                slots=threading.BoundedSemaphore(max(1, concurrency)),
                # Verified against for unknown accounts: same parameters, same cost.
                dummy_hash=hasher.hash(secrets.token_urlsafe(16)),
            )
            _instances[key] = found
        return found


def init_passwords(app: Flask) -> None:
    app.extensions[PASSWORDS_EXTENSION] = _build(
        app.config["ARGON2_TIME_COST"],
        app.config["ARGON2_MEMORY_COST"],
        app.config["ARGON2_PARALLELISM"],
        app.config["ARGON2_MAX_CONCURRENCY"],
    )


def get_passwords() -> Passwords:
    return current_app.extensions[PASSWORDS_EXTENSION]


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    text = resources.files("irisvue.auth").joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def is_common(password: str) -> bool:
    return password.casefold() in common_passwords()
