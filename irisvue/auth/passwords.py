"""Password hashing (Argon2id, RFC 9106 profile) and the password rules.

Argon2 is memory-hard by design: each hash in flight holds ARGON2_MEMORY_COST
KiB (64 MiB by default). A per-process semaphore bounds how many run at once
(ARGON2_MAX_CONCURRENCY, default the usable CPU cores divided among the web
workers), so a burst of logins queues for a core instead of multiplying a
worker's memory.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
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
                return self.hasher.verify(hashed or self.dummy_hash, password) and bool(hashed)
            except (VerificationError, InvalidHashError):
                return False

    def needs_rehash(self, hashed: str) -> bool:
        try:
            return self.hasher.check_needs_rehash(hashed)
        except InvalidHashError:
            return True


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
