"""Accounts, sign-in, sessions (refresh-token families) and email flows."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api


def init_app(app: Flask, api: Api) -> None:
    """Password hashing, token checks, rate limits, email jobs and the auth API."""
    from irisvue.auth import (
        identity_routes,  # noqa: F401 - native sign-in views on `blp`
        jobs,  # noqa: F401 - registers the email job handlers
    )
    from irisvue.auth.passwords import init_passwords
    from irisvue.auth.ratelimit import init_ratelimit
    from irisvue.auth.routes import blp
    from irisvue.auth.tokens import init_tokens
    from irisvue.extensions import jwt

    init_passwords(app)
    init_tokens(jwt)
    init_ratelimit(app)
    api.register_blueprint(blp)
