"""Fixtures of the job tests: apps with their own settings, raw Redis access."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from redis import Redis

from irisvue import create_app
from tests.conftest import reset_state
from tests.jobs import handlers  # noqa: F401 - registers the test-only job kinds


@pytest.fixture
def make_app(stack_env: dict[str, str]) -> Iterator:
    """create_app(overrides) for a test; every app built is reset afterwards."""
    built: list[Flask] = []

    def _make(**overrides: Any) -> Flask:
        application = create_app(overrides or None)
        application.config["TESTING"] = True
        built.append(application)
        return application

    yield _make
    for application in built:
        reset_state(application)


@pytest.fixture
def redis_raw(stack_env: dict[str, str]) -> Iterator[Redis]:
    client = Redis.from_url(stack_env["REDIS_URL"])
    yield client
    client.close()


def rq_job_hash(redis: Redis, job_id: str) -> dict[str, bytes]:
    """The RQ job hash with `data` and `exc_info` decompressed."""
    raw = {k.decode(): v for k, v in redis.hgetall(f"rq:job:{job_id}").items()}
    for name in ("data", "exc_info"):
        if name in raw:
            raw[name] = zlib.decompress(raw[name])
    return raw


def all_redis_bytes(redis: Redis) -> bytes:
    """Every key and value in Redis (hashes, lists, sets, zsets), decompressed where RQ
    compresses, to search for personal data."""
    chunks: list[bytes] = []
    for key in redis.scan_iter(count=500):
        chunks.append(key)
        kind = redis.type(key)
        if kind == b"string":
            chunks.append(redis.get(key) or b"")
        elif kind == b"hash":
            for field, value in redis.hgetall(key).items():
                chunks.append(field)
                try:
                    chunks.append(zlib.decompress(value))
                except zlib.error:
                    chunks.append(value)
        elif kind == b"list":
            chunks.extend(redis.lrange(key, 0, -1))
        elif kind == b"set":
            chunks.extend(redis.smembers(key))
        elif kind == b"zset":
            chunks.extend(member for member, _ in redis.zrange(key, 0, -1, withscores=True))
        elif kind == b"stream":
            for _entry_id, fields in redis.xrange(key):
                for field, value in fields.items():
                    chunks.append(field)
                    try:
                        chunks.append(zlib.decompress(value))
                    except zlib.error:
                        chunks.append(value)
    return b"\n".join(chunks)
