"""How many job event streams may be open: per worker process and per user.

An SSE stream holds one gthread thread for as long as it lasts, so streams are
a bounded resource (SPEC §3 Jobs):

* per process, at most SSE_MAX_STREAMS_PER_WORKER (half of gunicorn's threads
  by default): the other threads stay free for ordinary requests → 503 `busy`;
* per user, at most SSE_MAX_STREAMS_PER_USER across every process → 429
  `too_many_streams`.

The per-user count lives in Redis as leases: a sorted set per user, one member
per open stream scored with its expiry (Redis' own clock). A stream refreshes
its lease at every heartbeat and removes it when it ends, so a process killed
mid-stream frees its user's slots when the leases run out (a few heartbeats).
Every process also keeps its own tally, always: with Redis unreachable that
tally alone decides (at most the per-user cap per process, and the process cap
still holds), so a Redis outage never lifts the limits.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field

import structlog
from flask import Flask, current_app
from redis import Redis
from redis.commands.core import Script
from redis.exceptions import RedisError

from irisvue.clients import REDIS_EXTENSION
from irisvue.errors import APIError

log = structlog.get_logger(__name__)

EXTENSION = "irisvue.job_streams"
LEASE_KEY = "irisvue:sse:user:{}"

# KEYS[1] the user's lease set; ARGV: cap, lease ms, stream id. 1 = acquired.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""
# KEYS[1]; ARGV: lease ms, stream id. Re-adds a lease Redis lost: it is a live stream.
_REFRESH = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return 1
"""


def lease_seconds(heartbeat: float) -> float:
    """How long a lease outlives its last refresh: three heartbeats and some slack."""
    return 3 * heartbeat + 5


@dataclass
class StreamSlot:
    """One open stream's place in both counts; `release()` is idempotent."""

    limits: StreamLimits
    user_id: uuid.UUID
    stream_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    leased: bool = False  # holds a lease in Redis
    released: bool = False

    def refresh(self) -> None:
        self.limits.refresh(self)

    def release(self) -> None:
        self.limits.release(self)


class StreamLimits:
    """The process's tally of open streams and the Redis leases of its streams."""

    def __init__(self, app: Flask) -> None:
        config = app.config
        self.per_worker = int(config["SSE_MAX_STREAMS_PER_WORKER"])
        self.per_user = int(config["SSE_MAX_STREAMS_PER_USER"])
        self.retry_after = str(max(1, math.ceil(float(config["SSE_HEARTBEAT_SECONDS"]))))
        self.lease_ms = int(lease_seconds(float(config["SSE_HEARTBEAT_SECONDS"])) * 1000)
        self._app = app  # release() runs after the request, outside any app context
        self._lock = threading.Lock()
        self._open = 0
        self._by_user: Counter[uuid.UUID] = Counter()
        self._scripts: dict[str, Script] = {}

    def _redis(self) -> Redis | None:
        return self._app.extensions.get(REDIS_EXTENSION)

    def _run(self, redis: Redis, source: str, user_id: uuid.UUID, *args: object) -> object:
        """Run a lease script on the user's lease set by EVALSHA: redis-py sends the
        script itself only when Redis answers NOSCRIPT (first use, or after a restart)."""
        script = self._scripts.get(source)
        if script is None:  # a race registers it twice: harmless, no I/O
            script = self._scripts[source] = redis.register_script(source)
        return script(keys=[LEASE_KEY.format(user_id)], args=args, client=redis)

    def _refuse(self, status: int, code: str, detail: str) -> APIError:
        return APIError(status, code, detail, headers={"Retry-After": self.retry_after})

    def acquire(self, user_id: uuid.UUID) -> StreamSlot:
        """A slot for a new stream of `user_id`, or APIError 429 / 503 (with Retry-After)."""
        with self._lock:
            if self._by_user[user_id] >= self.per_user:
                raise self._too_many()
            if self._open >= self.per_worker:
                raise self._refuse(503, "busy", "Too many open streams here; retry shortly.")
            self._open += 1
            self._by_user[user_id] += 1
        slot = StreamSlot(self, user_id)
        try:
            slot.leased = self._lease(slot)
        except APIError:
            self._forget(slot)
            raise
        return slot

    def _too_many(self) -> APIError:
        return self._refuse(
            429,
            "too_many_streams",
            f"At most {self.per_user} job streams may be open at once; close one first.",
        )

    def _lease(self, slot: StreamSlot) -> bool:
        """True if Redis holds the lease; False if Redis is absent or unreachable."""
        redis = self._redis()
        if redis is None:
            return False
        try:
            granted = self._run(
                redis, _ACQUIRE, slot.user_id, self.per_user, self.lease_ms, slot.stream_id
            )
        except (RedisError, OSError) as exc:
            # This process's tally still caps the user and the threads.
            log.warning("stream_lease_unavailable", error=type(exc).__name__)
            return False
        if not granted:
            raise self._too_many()
        return True

    def refresh(self, slot: StreamSlot) -> None:
        redis = self._redis()
        if redis is None or slot.released:
            return
        try:
            self._run(redis, _REFRESH, slot.user_id, self.lease_ms, slot.stream_id)
            slot.leased = True
        except (RedisError, OSError) as exc:
            log.warning("stream_lease_unavailable", error=type(exc).__name__)

    def _forget(self, slot: StreamSlot) -> None:
        with self._lock:
            if slot.released:
                return
            slot.released = True
            self._open -= 1
            self._by_user[slot.user_id] -= 1
            if self._by_user[slot.user_id] <= 0:
                del self._by_user[slot.user_id]

    def release(self, slot: StreamSlot) -> None:
        if slot.released:
            return
        self._forget(slot)
        redis = self._redis()
        if redis is None or not slot.leased:
            return
        try:
            redis.zrem(LEASE_KEY.format(slot.user_id), slot.stream_id)
        except (RedisError, OSError) as exc:  # the lease runs out by itself
            log.warning("stream_lease_unavailable", error=type(exc).__name__)


def stream_limits() -> StreamLimits:
    """The current app's stream limits (created with the jobs feature)."""
    return current_app.extensions[EXTENSION]


def init_stream_limits(app: Flask) -> None:
    app.extensions[EXTENSION] = StreamLimits(app)
