"""The per-account password budget: a slot is reserved before every password check.

flask-limiter's failure-only limits are checked when a request arrives and
counted after its answer, so every failure in flight passes the check: 40
simultaneous wrong logins verified 40 passwords. Here a check first takes a
slot atomically (limits' fixed window: one INCRBY in Redis, shared by every
worker and instance) and only then verifies; a correct password gives its
slot back, so only failures use the budget. Login, PATCH /me, POST /password
and erasure draw on the same budget, keyed by the account's address (a keyed
hash: Redis holds no email address; unknown addresses have budgets too).

When Redis fails the reservation is taken from a per-process memory counter
instead (limits' MemoryStorage), and Redis is tried again after a pause:
weaker across processes, never open.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from flask import Flask, current_app
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from irisvue.auth.audit import pseudonym
from irisvue.errors import APIError

log = structlog.get_logger(__name__)

EXTENSION = "irisvue.lockout"
SCOPE = "account-password"
RETRY_REDIS_SECONDS = 5.0
RATE_LIMITED = "Too many requests; retry after the number of seconds in Retry-After."


class _Budgets:
    """The app's strategies: Redis (when configured) and the per-process fallback."""

    def __init__(self, uri: str, options: dict[str, Any]) -> None:
        self.memory = FixedWindowRateLimiter(MemoryStorage())
        self.shared = (
            None
            if uri.startswith("memory://")
            else FixedWindowRateLimiter(storage_from_string(uri, **options))
        )
        self.shared_dead_until = 0.0

    def take(self, item: RateLimitItem, key: str) -> tuple[FixedWindowRateLimiter, bool]:
        if self.shared is not None and time.monotonic() >= self.shared_dead_until:
            try:
                return self.shared, self.shared.hit(item, SCOPE, key)
            except Exception as exc:  # noqa: BLE001 - any storage failure: fall back, never open
                self.shared_dead_until = time.monotonic() + RETRY_REDIS_SECONDS
                log.warning("lockout_storage_unavailable", error=type(exc).__name__)
        return self.memory, self.memory.hit(item, SCOPE, key)


def init_lockout(app: Flask) -> None:
    app.extensions[EXTENSION] = _Budgets(
        app.config["RATELIMIT_STORAGE_URI"], dict(app.config["RATELIMIT_STORAGE_OPTIONS"])
    )


def account_key(email: str) -> str:
    """The budget's key: the same keyed hash the per-email limits use."""
    return pseudonym("ratelimit-email", email)


@dataclass
class _Reservation:
    taken: list[tuple[FixedWindowRateLimiter, RateLimitItem, str]]

    def refund(self) -> None:
        """Give the slots back (the password was right): only failures count."""
        for strategy, item, key in self.taken:
            storage: Storage = strategy.storage
            try:
                storage.incr(item.key_for(SCOPE, key), item.get_expiry(), amount=-1)
            except Exception as exc:  # noqa: BLE001 - the slot simply stays taken
                log.warning("lockout_refund_failed", error=type(exc).__name__)
        self.taken = []


def _limits() -> list[RateLimitItem]:
    return list(parse_many(current_app.config["RATELIMIT_LOGIN_FAILURES_PER_ACCOUNT"]))


def _retry_after(strategy: FixedWindowRateLimiter, item: RateLimitItem, key: str) -> int:
    try:
        reset_at = strategy.get_window_stats(item, SCOPE, key).reset_time
    except Exception:  # noqa: BLE001 - storage gone since the hit: a whole window
        return item.get_expiry()
    return max(1, int(reset_at - time.time()) + 1)


def reserve(email: str) -> _Reservation:
    """Take a slot of the account's budget, or answer 429 with Retry-After."""
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return _Reservation([])
    budgets: _Budgets = current_app.extensions[EXTENSION]
    key = account_key(email)
    taken: list[tuple[FixedWindowRateLimiter, RateLimitItem, str]] = []
    for item in _limits():
        strategy, granted = budgets.take(item, key)
        taken.append((strategy, item, key))
        if not granted:
            retry_after = _retry_after(strategy, item, key)
            raise APIError(
                429, "rate_limited", RATE_LIMITED, headers={"Retry-After": str(retry_after)}
            )
    return _Reservation(taken)


def checked(email: str, verify: Callable[[], bool]) -> bool:
    """Run one password check under the account's budget; True when it matched."""
    reservation = reserve(email)
    matched = verify()
    if matched:
        reservation.refund()
    return matched
