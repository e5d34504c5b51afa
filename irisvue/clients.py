"""Network clients kept in `app.extensions` (Redis today; storage in storage.py)."""

from __future__ import annotations

from flask import Flask, current_app
from redis import Redis

REDIS_EXTENSION = "irisvue.redis"


def make_redis(url: str, timeout: float = 1.0) -> Redis:
    # Short timeouts: a dead Redis must cost a request milliseconds, not minutes.
    return Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
        retry_on_timeout=False,
    )


def init_redis(app: Flask) -> None:
    url = app.config.get("REDIS_URL")
    app.extensions[REDIS_EXTENSION] = make_redis(url) if url else None


def get_redis() -> Redis | None:
    """The app's Redis client, or None in the embedded development stack."""
    return current_app.extensions.get(REDIS_EXTENSION)
