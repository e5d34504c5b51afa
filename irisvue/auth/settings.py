"""The auth blueprint's own settings, read from the environment like config.py's.

Precedence: a value passed to `create_app(config=...)`, then the environment
variable of the same name, then the default here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask

from irisvue.config import ConfigError

AUTH_DEFAULTS: dict[str, Any] = {
    # Rate limits, in flask-limiter's notation ("N per M minutes", ";"-separated).
    "RATELIMIT_LOGIN_PER_IP": "30 per minute;300 per hour",
    "RATELIMIT_LOGIN_FAILURES_PER_ACCOUNT": "10 per 15 minutes",
    # Per IP limits stay loose enough for carrier-grade NAT (many phones, one IP).
    "RATELIMIT_REGISTER_PER_IP": "20 per hour",
    "RATELIMIT_REGISTER_PER_EMAIL": "3 per hour",
    "RATELIMIT_PASSWORD_RESET_PER_IP": "10 per hour",
    "RATELIMIT_PASSWORD_RESET_PER_EMAIL": "3 per hour",
    "RATELIMIT_EMAIL_TOKEN_PER_IP": "30 per hour",
    "RATELIMIT_VERIFY_EMAIL_PER_USER": "5 per hour",
    "RATELIMIT_PASSWORD_CHANGE_FAILURES_PER_USER": "10 per 15 minutes",
    # Single-use email tokens.
    "VERIFY_EMAIL_TOKEN_HOURS": 24,
    "PASSWORD_RESET_TOKEN_MINUTES": 60,
    # Where the links in emails point; the token is appended as `?token=...`.
    "VERIFY_EMAIL_URL": "irisvue://verify-email",
    "PASSWORD_RESET_URL": "irisvue://password-reset",
    # Both answers of POST /password-reset/request take at least this long, so
    # the time does not tell whether an account exists.
    "PASSWORD_RESET_REQUEST_MIN_MS": 150,
}


def load_settings(app: Flask, defaults: Mapping[str, Any]) -> None:
    for name, default in defaults.items():
        if name in app.config:
            continue
        raw = os.environ.get(name, "").strip()
        if not raw:
            app.config[name] = default
        elif isinstance(default, int):
            try:
                app.config[name] = int(raw)
            except ValueError as exc:
                raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc
        else:
            app.config[name] = raw
