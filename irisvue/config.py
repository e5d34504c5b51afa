"""Configuration: every setting comes from the environment (12-factor).

With no configuration the app runs as an embedded development stack; in
production (`IRISVUE_ENV=production`) `Config.from_env` refuses weak or missing
settings with one line that names the problem.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from irisvue.settings import (
    ConfigError,
    auth_settings,
    consent_settings,
    env_bool,
    env_float,
    env_int,
    job_settings,
    provider_settings,
    stream_settings,
)

# Values that must never reach production: the seeds' and tutorials' defaults.
KNOWN_DEFAULT_SECRETS = frozenset(
    {
        "",
        "changeme",
        "change-me",
        "secret",
        "dev",
        "development",
        "you-will-never-guess",
        "super-secret",
        "replace-me",
    }
)
# MinIO's and the AWS docs' example credentials.
DEFAULT_S3_SECRETS = frozenset({"minioadmin", "wjalrxutnfemi/k7mdeng/bpxrficyexamplekey"})
MIN_SECRET_BYTES = 32  # 256 bits

__all__ = ["ConfigError", "check_production", "from_env", "parse_master_keys", "parse_origins"]


def parse_origins(raw: str | None) -> list[str]:
    """CORS_ORIGINS: a JSON list or a comma-separated string."""
    if not raw or not raw.strip():
        return []
    raw = raw.strip()
    if raw.startswith("["):
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise ConfigError("CORS_ORIGINS is not a valid JSON list") from exc
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError("CORS_ORIGINS must be a JSON list of strings")
        return [v.strip() for v in value if v.strip()]
    return [part.strip() for part in raw.split(",") if part.strip()]


def parse_master_keys(raw: str) -> list[tuple[str, str]]:
    """MASTER_KEYS: `id1:base64key1,id2:base64key2`; the first wraps new keys."""
    keys: list[tuple[str, str]] = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        key_id, sep, material = part.partition(":")
        if not sep or not key_id or not material:
            raise ConfigError("MASTER_KEYS entries must look like `id:base64key`")
        keys.append((key_id.strip(), material.strip()))
    return keys


def _instance_secrets(instance_path: Path) -> dict[str, str]:
    """Development secrets generated once and shared by every worker process.

    Created with O_EXCL so concurrent gunicorn workers agree on one file.
    """
    path = instance_path / "secrets.json"
    instance_path.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        generated = {
            "SECRET_KEY": secrets.token_urlsafe(48),
            "JWT_SECRET_KEY": secrets.token_urlsafe(48),
            "MASTER_KEYS": f"dev1:{secrets.token_urlsafe(32)}",
        }
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                json.dump(generated, fh)
    for _ in range(50):  # another process may be writing it right now
        try:
            return json.loads(path.read_text())
        except ValueError:
            time.sleep(0.05)
    raise ConfigError(f"cannot read development secrets from {path}")


def from_env(env: Mapping[str, str], instance_path: Path) -> dict[str, Any]:
    """Build the Flask config mapping from environment variables."""
    environment = env.get("IRISVUE_ENV", "development").strip() or "development"
    if environment not in {"development", "production"}:
        raise ConfigError("IRISVUE_ENV must be `development` or `production`")
    production = environment == "production"

    database_url = env.get("DATABASE_URL", "").strip()
    if not database_url:
        database_url = f"sqlite:///{instance_path / 'irisvue.sqlite3'}"
    elif database_url.startswith("postgres://"):
        database_url = "postgresql+psycopg2://" + database_url[len("postgres://") :]
    elif database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg2://" + database_url[len("postgresql://") :]

    secret_key = env.get("SECRET_KEY", "").strip()
    jwt_secret = env.get("JWT_SECRET_KEY", "").strip()
    master_keys_raw = env.get("MASTER_KEYS", "").strip()
    if not production and not (secret_key and jwt_secret and master_keys_raw):
        generated = _instance_secrets(instance_path)
        secret_key = secret_key or generated["SECRET_KEY"]
        jwt_secret = jwt_secret or generated["JWT_SECRET_KEY"]
        master_keys_raw = master_keys_raw or generated["MASTER_KEYS"]

    redis_url = env.get("REDIS_URL", "").strip() or None
    s3_endpoint = env.get("S3_ENDPOINT", "").strip() or None
    cors_origins = parse_origins(env.get("CORS_ORIGINS"))
    s3_sse = env.get("S3_SSE", "none").strip().lower() or "none"
    if s3_sse not in {"s3", "none"}:
        raise ConfigError("S3_SSE must be `s3` or `none`")

    config: dict[str, Any] = {
        "IRISVUE_ENV": environment,
        "APP_NAME": env.get("APP_NAME", "IrisVue").strip() or "IrisVue",
        "SECRET_KEY": secret_key,
        "JWT_SECRET_KEY": jwt_secret,
        "MASTER_KEYS": parse_master_keys(master_keys_raw) if master_keys_raw else [],
        # `id:secret,...` (first keys new consent records); parsed by irisvue.consent.keys.
        "LEDGER_KEYS": env.get("LEDGER_KEYS", "").strip(),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": redis_url,
        "S3_ENDPOINT": s3_endpoint,
        "S3_ACCESS_KEY": env.get("S3_ACCESS_KEY", ""),
        "S3_SECRET_KEY": env.get("S3_SECRET_KEY", ""),
        "S3_BUCKET_NAME": env.get("S3_BUCKET_NAME", "irisvue").strip() or "irisvue",
        "S3_SECURE": env_bool(env.get("S3_SECURE"), False),
        "S3_REGION": env.get("S3_REGION", "").strip() or None,
        "S3_SSE": s3_sse,
        "STORAGE_DIR": str(instance_path / "objects"),
        "ACCESS_TOKEN_EXPIRE_MINUTES": env_int(env, "ACCESS_TOKEN_EXPIRE_MINUTES", 30),
        "REFRESH_TOKEN_EXPIRE_DAYS": env_int(env, "REFRESH_TOKEN_EXPIRE_DAYS", 30),
        "REFRESH_REUSE_GRACE_SECONDS": env_int(env, "REFRESH_REUSE_GRACE_SECONDS", 10),
        # Absolute lifetime of a session, however often it is refreshed.
        "SESSION_MAX_DAYS": env_int(env, "SESSION_MAX_DAYS", 90),
        "SMTP_HOST": env.get("SMTP_HOST", "").strip() or None,
        "SMTP_PORT": env_int(env, "SMTP_PORT", 25),
        "SMTP_USERNAME": env.get("SMTP_USERNAME", "").strip() or None,
        "SMTP_PASSWORD": env.get("SMTP_PASSWORD", "") or None,
        "SMTP_STARTTLS": env_bool(env.get("SMTP_STARTTLS"), False),
        "SMTP_SSL": env_bool(env.get("SMTP_SSL"), False),
        "SMTP_TIMEOUT_SECONDS": env_int(env, "SMTP_TIMEOUT_SECONDS", 10),
        "MAIL_FROM": env.get("MAIL_FROM", "").strip() or "IrisVue <no-reply@irisvue.invalid>",
        "CORS_ORIGINS": cors_origins,
        "TRUSTED_PROXIES": env_int(env, "TRUSTED_PROXIES", 0),
        "MAX_UPLOAD_MB": env_int(env, "MAX_UPLOAD_MB", 20),
        "MAX_JSON_KB": env_int(env, "MAX_JSON_KB", 64),
        "BIOMETRIC_RETENTION_DAYS": env_int(env, "BIOMETRIC_RETENTION_DAYS", 1095),
        "EXPORT_RETENTION_DAYS": env_int(env, "EXPORT_RETENTION_DAYS", 7),
        "AUDIT_RETENTION_DAYS": env_int(env, "AUDIT_RETENTION_DAYS", 365),
        "EXPORT_LINK_TTL_SECONDS": env_int(env, "EXPORT_LINK_TTL_SECONDS", 24 * 3600),
        # The API's public origin (https://api.example.com): links handed out are absolute.
        "PUBLIC_BASE_URL": env.get("PUBLIC_BASE_URL", "").strip().rstrip("/"),
        "SSE_HEARTBEAT_SECONDS": env_float(env, "SSE_HEARTBEAT_SECONDS", 15.0),
        "SSE_MAX_STREAM_SECONDS": env_float(env, "SSE_MAX_STREAM_SECONDS", 300.0),
        "SSE_POLL_SECONDS": env_float(env, "SSE_POLL_SECONDS", 0.5),
        "PRIVACY_DEADLINE_DAYS_GDPR": env_int(env, "PRIVACY_DEADLINE_DAYS_GDPR", 30),
        "PRIVACY_DEADLINE_DAYS_CCPA": env_int(env, "PRIVACY_DEADLINE_DAYS_CCPA", 45),
        "PRIVACY_DEADLINE_DAYS_DEFAULT": env_int(env, "PRIVACY_DEADLINE_DAYS_DEFAULT", 30),
        "RETENTION_SWEEP_HOUR": env_int(env, "RETENTION_SWEEP_HOUR", 3),
        "ERASURE_TEST_PAUSE_SECONDS": env_float(env, "ERASURE_TEST_PAUSE_SECONDS", 0.0),
        "EXPORT_TEST_PAUSE_SECONDS": env_float(env, "EXPORT_TEST_PAUSE_SECONDS", 0.0),
        "RATELIMIT_ENABLED": env_bool(env.get("RATELIMIT_ENABLED"), True),
        # Production may run plain S3/SMTP and no rate limits only when this says so.
        "ALLOW_INSECURE_TRANSPORT": env_bool(env.get("ALLOW_INSECURE_TRANSPORT"), False),
        "HEALTH_TIMEOUT_SECONDS": env_float(env, "HEALTH_TIMEOUT_SECONDS", 1.0),
        "LOG_LEVEL": env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO",
    }
    config.update(auth_settings(env))
    config.update(job_settings(env))
    config.update(consent_settings(env))
    config.update(stream_settings(env))
    config.update(provider_settings(env))
    if production:
        check_production(config)
    return config


def check_production(config: Mapping[str, Any]) -> None:
    """Refuse to run production with a default secret or a development backend."""
    for name in ("SECRET_KEY", "JWT_SECRET_KEY"):
        value = config.get(name) or ""
        if value.lower() in KNOWN_DEFAULT_SECRETS:
            raise ConfigError(f"{name} must be set to a random secret in production")
        if len(value.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(f"{name} must be at least {MIN_SECRET_BYTES} bytes (256 bits)")
    if config.get("SECRET_KEY") == config.get("JWT_SECRET_KEY"):
        raise ConfigError("SECRET_KEY and JWT_SECRET_KEY must differ in production")
    if not config.get("MASTER_KEYS"):
        raise ConfigError("MASTER_KEYS must be set in production")
    if not str(config.get("SQLALCHEMY_DATABASE_URI", "")).startswith("postgresql"):
        raise ConfigError("DATABASE_URL must point to PostgreSQL in production")
    if not config.get("REDIS_URL"):
        raise ConfigError("REDIS_URL must be set in production")
    if not config.get("S3_ENDPOINT"):
        raise ConfigError("S3_ENDPOINT must be set in production")
    if not config.get("S3_ACCESS_KEY") or not config.get("S3_SECRET_KEY"):
        raise ConfigError("S3_ACCESS_KEY and S3_SECRET_KEY must be set in production")
    if str(config["S3_SECRET_KEY"]).lower() in KNOWN_DEFAULT_SECRETS | DEFAULT_S3_SECRETS:
        raise ConfigError("S3_SECRET_KEY must not be a default credential in production")
    if "*" in config.get("CORS_ORIGINS", []):
        raise ConfigError("CORS_ORIGINS must not allow `*` in production")
    if config.get("SMTP_SSL") and config.get("SMTP_STARTTLS"):
        raise ConfigError("SMTP_SSL and SMTP_STARTTLS are exclusive: choose one")
    _check_transport(config)


def _check_transport(config: Mapping[str, Any]) -> None:
    """Plain transports and disabled limits only on a network declared private."""
    if config.get("ALLOW_INSECURE_TRANSPORT"):
        return
    hint = "in production (or set ALLOW_INSECURE_TRANSPORT=true on a private network)"
    if not config.get("RATELIMIT_ENABLED", True):
        raise ConfigError(f"RATELIMIT_ENABLED must not be false {hint}")
    if not config.get("S3_SECURE"):
        raise ConfigError(f"S3_SECURE must be true {hint}")
    if config.get("SMTP_HOST") and not (config.get("SMTP_STARTTLS") or config.get("SMTP_SSL")):
        raise ConfigError(f"SMTP needs SMTP_STARTTLS=true or SMTP_SSL=true {hint}")
