"""How each setting is read from the environment, and its default: one place.

`irisvue.config.from_env` assembles them; features read `app.config` only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from argon2.profiles import RFC_9106_LOW_MEMORY


class ConfigError(RuntimeError):
    """A setting is missing or unsafe; the message is one line for the operator."""


def env_bool(value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def env_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc


def env_int_list(env: Mapping[str, str], name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return tuple(int(part) for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"{name} must be comma-separated integers, got {raw!r}") from exc


def env_str(env: Mapping[str, str], name: str, default: str) -> str:
    return env.get(name, "").strip() or default


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _argon2_slots(env: Mapping[str, str]) -> int:
    """Hashes in flight per process: the usable cores shared among the web workers.

    A verify keeps one core busy (its lanes on one thread), so this many fill the
    cores, and more at once only contend for CPU and cache (measured: README,
    "What limits each figure now", login).
    """
    cpus = _usable_cpus()
    workers = env_int(env, "WEB_CONCURRENCY", max(2, cpus))  # gunicorn.conf.py's default
    return max(1, cpus // max(1, workers))


def auth_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """Rate limits, email tokens and password hashing (listed in .env.example)."""
    return {
        # Rate limits, in flask-limiter's notation ("N per M minutes", ";"-separated).
        "RATELIMIT_LOGIN_PER_IP": env_str(
            env, "RATELIMIT_LOGIN_PER_IP", "30 per minute;300 per hour"
        ),
        # Failed password checks per account: login, PATCH /me, POST /password and
        # erasure share it; a slot is reserved before each check (see auth.lockout).
        "RATELIMIT_LOGIN_FAILURES_PER_ACCOUNT": env_str(
            env, "RATELIMIT_LOGIN_FAILURES_PER_ACCOUNT", "10 per 15 minutes"
        ),
        # Per IP limits stay loose enough for carrier-grade NAT (many phones, one IP).
        "RATELIMIT_REGISTER_PER_IP": env_str(env, "RATELIMIT_REGISTER_PER_IP", "20 per hour"),
        "RATELIMIT_REGISTER_PER_EMAIL": env_str(env, "RATELIMIT_REGISTER_PER_EMAIL", "3 per hour"),
        "RATELIMIT_PASSWORD_RESET_PER_IP": env_str(
            env, "RATELIMIT_PASSWORD_RESET_PER_IP", "10 per hour"
        ),
        "RATELIMIT_PASSWORD_RESET_PER_EMAIL": env_str(
            env, "RATELIMIT_PASSWORD_RESET_PER_EMAIL", "3 per hour"
        ),
        "RATELIMIT_EMAIL_TOKEN_PER_IP": env_str(env, "RATELIMIT_EMAIL_TOKEN_PER_IP", "30 per hour"),
        "RATELIMIT_VERIFY_EMAIL_PER_USER": env_str(
            env, "RATELIMIT_VERIFY_EMAIL_PER_USER", "5 per hour"
        ),
        "RATELIMIT_PASSWORD_CHANGE_FAILURES_PER_USER": env_str(
            env, "RATELIMIT_PASSWORD_CHANGE_FAILURES_PER_USER", "10 per 15 minutes"
        ),
        # Every PATCH /me (email change) counts, answered 200, 403 or 409 alike.
        "RATELIMIT_EMAIL_CHANGE_PER_USER": env_str(
            env, "RATELIMIT_EMAIL_CHANGE_PER_USER", "10 per hour"
        ),
        "VERIFY_EMAIL_TOKEN_HOURS": env_int(env, "VERIFY_EMAIL_TOKEN_HOURS", 24),
        "PASSWORD_RESET_TOKEN_MINUTES": env_int(env, "PASSWORD_RESET_TOKEN_MINUTES", 60),
        # Where the links in emails point; the token is appended as `?token=...`.
        "VERIFY_EMAIL_URL": env_str(env, "VERIFY_EMAIL_URL", "irisvue://verify-email"),
        "PASSWORD_RESET_URL": env_str(env, "PASSWORD_RESET_URL", "irisvue://password-reset"),
        # Both answers of POST /password-reset/request take at least this long, so
        # the time does not tell whether an account exists.
        "PASSWORD_RESET_REQUEST_MIN_MS": env_int(env, "PASSWORD_RESET_REQUEST_MIN_MS", 150),
        # argon2-cffi's own default profile (RFC 9106, low memory); the semaphore
        # bound defaults to the usable cores divided among the web workers.
        "ARGON2_TIME_COST": env_int(env, "ARGON2_TIME_COST", RFC_9106_LOW_MEMORY.time_cost),
        "ARGON2_MEMORY_COST": env_int(env, "ARGON2_MEMORY_COST", RFC_9106_LOW_MEMORY.memory_cost),
        "ARGON2_PARALLELISM": env_int(env, "ARGON2_PARALLELISM", RFC_9106_LOW_MEMORY.parallelism),
        "ARGON2_MAX_CONCURRENCY": env_int(env, "ARGON2_MAX_CONCURRENCY", _argon2_slots(env)),
    }


def job_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """RQ and the outbox (listed in .env.example)."""
    return {
        "JOB_FAILURE_TTL_SECONDS": env_int(env, "JOB_FAILURE_TTL_SECONDS", 7 * 24 * 3600),
        "JOB_MAX_RETRIES": env_int(env, "JOB_MAX_RETRIES", 3),
        "JOB_RESULT_TTL_SECONDS": env_int(env, "JOB_RESULT_TTL_SECONDS", 24 * 3600),
        # RQ retry delays; the last one repeats when JOB_MAX_RETRIES is larger.
        "JOB_RETRY_BACKOFF_SECONDS": env_int_list(env, "JOB_RETRY_BACKOFF_SECONDS", (10, 60, 300)),
        # Short: enqueueing happens on the request path and must fail fast.
        "JOB_REDIS_TIMEOUT_SECONDS": env_float(env, "JOB_REDIS_TIMEOUT_SECONDS", 1.0),
        "JOB_RELAY_INTERVAL_SECONDS": env_int(env, "JOB_RELAY_INTERVAL_SECONDS", 60),
    }


def consent_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """The jurisdiction suggestion (listed in .env.example)."""
    return {
        # A MaxMind-format City database file; unset: every client gets `generic`.
        "GEOIP_DATABASE": env.get("GEOIP_DATABASE", "").strip() or None,
    }


def stream_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """Bounds on job event streams (listed in .env.example).

    A stream holds a gunicorn thread: a process gives streams at most half of
    its threads (GUNICORN_THREADS, read with gunicorn.conf.py's default), so
    ordinary requests always find one.
    """
    threads = env_int(env, "GUNICORN_THREADS", 3)
    half = threads // 2
    per_worker = env_int(env, "SSE_MAX_STREAMS_PER_WORKER", half)
    if not 0 <= per_worker <= half:
        raise ConfigError(
            f"SSE_MAX_STREAMS_PER_WORKER must be between 0 and half of GUNICORN_THREADS ({half})"
        )
    per_user = env_int(env, "SSE_MAX_STREAMS_PER_USER", 2)
    if per_user < 1:
        raise ConfigError("SSE_MAX_STREAMS_PER_USER must be at least 1")
    return {
        "GUNICORN_THREADS": threads,
        "SSE_MAX_STREAMS_PER_WORKER": per_worker,
        "SSE_MAX_STREAMS_PER_USER": per_user,
    }


def env_list(env: Mapping[str, str], name: str, default: str = "") -> tuple[str, ...]:
    raw = env.get(name, "").strip() or default
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def provider_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """Sign in with Apple / Google (listed in .env.example). A provider is enabled
    when its client-id list is set; the endpoints default to the real ones."""
    apple_key = env.get("APPLE_PRIVATE_KEY", "").strip().replace("\\n", "\n")
    return {
        "APPLE_CLIENT_IDS": env_list(env, "APPLE_CLIENT_IDS"),
        "GOOGLE_CLIENT_IDS": env_list(env, "GOOGLE_CLIENT_IDS"),
        "APPLE_TEAM_ID": env_str(env, "APPLE_TEAM_ID", ""),
        "APPLE_KEY_ID": env_str(env, "APPLE_KEY_ID", ""),
        "APPLE_PRIVATE_KEY": apple_key,
        "APPLE_ISSUER": env_str(env, "APPLE_ISSUER", "https://appleid.apple.com"),
        "APPLE_JWKS_URL": env_str(env, "APPLE_JWKS_URL", "https://appleid.apple.com/auth/keys"),
        "APPLE_TOKEN_URL": env_str(env, "APPLE_TOKEN_URL", "https://appleid.apple.com/auth/token"),
        "APPLE_REVOKE_URL": env_str(
            env, "APPLE_REVOKE_URL", "https://appleid.apple.com/auth/revoke"
        ),
        "GOOGLE_ISSUERS": env_list(
            env, "GOOGLE_ISSUERS", "https://accounts.google.com,accounts.google.com"
        ),
        "GOOGLE_JWKS_URL": env_str(
            env, "GOOGLE_JWKS_URL", "https://www.googleapis.com/oauth2/v3/certs"
        ),
        # Every call to a provider (JWKS, Apple's token and revoke endpoints).
        "PROVIDER_HTTP_TIMEOUT_SECONDS": env_float(env, "PROVIDER_HTTP_TIMEOUT_SECONDS", 3.0),
        # Waits between the erasure job's attempts at Apple's revoke endpoint.
        "APPLE_REVOKE_BACKOFF_SECONDS": env_int_list(env, "APPLE_REVOKE_BACKOFF_SECONDS", (1, 4)),
    }
