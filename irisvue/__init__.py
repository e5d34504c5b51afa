"""IrisVue backend: the application factory."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from flask.sessions import SessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

from irisvue import auth, captures, consent, health, jobs, privacy
from irisvue.api import IrisVueApi
from irisvue.config import check_production, from_env
from irisvue.extensions import REVOCATION_BIND
from irisvue.version import __version__

__all__ = ["FEATURES", "__version__", "create_app"]

# The only list of features: each registers its own blueprint, CLI commands,
# job handlers and periodic tasks in `init_app(app, api)`, in this order.
FEATURES = (health, auth, jobs, consent, captures, privacy)


class StatelessSessionInterface(SessionInterface):
    """No cookie sessions: the API authenticates with bearer tokens only.

    Flask's default interface derives a signing key on every request even when
    no session is used; this one costs nothing and never sets a cookie.
    """

    def open_session(self, app: Flask, request: Any) -> None:
        return None  # Flask then uses a null session

    def save_session(self, app: Flask, session: Any, response: Any) -> None:
        return None


MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def _derived_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """Settings of third-party extensions, computed from ours."""
    max_upload = int(config["MAX_UPLOAD_MB"]) * 1024 * 1024
    return {
        "MAX_CONTENT_LENGTH": max_upload + 64 * 1024,  # room for multipart framing
        "SQLALCHEMY_ENGINE_OPTIONS": _engine_options(config["SQLALCHEMY_DATABASE_URI"]),
        "SQLALCHEMY_BINDS": _revocation_bind(config),
        "JWT_ALGORITHM": "HS256",
        "JWT_DECODE_ALGORITHMS": ["HS256"],
        "JWT_TOKEN_LOCATION": ["headers"],
        "JWT_ACCESS_TOKEN_EXPIRES": timedelta(minutes=config["ACCESS_TOKEN_EXPIRE_MINUTES"]),
        "JWT_REFRESH_TOKEN_EXPIRES": timedelta(days=config["REFRESH_TOKEN_EXPIRE_DAYS"]),
        "API_TITLE": config["APP_NAME"],
        "API_VERSION": __version__,
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        "OPENAPI_SWAGGER_UI_URL": "/api/docs/assets/",
        "JSON_SORT_KEYS": False,
        # Tokens travel in headers only; the random `csrf` claim (meant for cookies)
        # would also make a re-signed pair differ from the original.
        "JWT_COOKIE_CSRF_PROTECT": False,
    }


def _engine_options(url: str) -> dict[str, Any]:
    if url.startswith("postgresql"):
        return {
            # No SELECT 1 per checkout: irisvue.dbpool checks the socket for a hang-up.
            "pool_pre_ping": False,
            "pool_size": 5,
            "max_overflow": 5,
            "pool_timeout": 5,
            "connect_args": {"connect_timeout": 3, "application_name": "irisvue"},
        }
    return {"pool_pre_ping": True}


def _revocation_bind(config: Mapping[str, Any]) -> dict[str, Any]:
    """An engine of autocommit connections for the per-request token check.

    Checking a pooled connection out with `isolation_level="AUTOCOMMIT"` and back
    in (where the level is reset) cost ~100 µs of CPU per request; connections
    born autocommit skip that. One per request thread, as each thread runs at
    most one check at a time; no models use this bind, so no tables or migrations.
    """
    url = config["SQLALCHEMY_DATABASE_URI"]
    if not url.startswith("postgresql"):
        return {}
    threads = int(config["GUNICORN_THREADS"])
    return {
        REVOCATION_BIND: {
            "url": url,
            "isolation_level": "AUTOCOMMIT",
            "pool_size": threads,
            "max_overflow": threads,
        }
    }


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: config → extensions → Api → `init_app` of every feature."""
    from irisvue import cli, dbpool, docs, errors, guards, models, observability  # noqa: F401
    from irisvue.clients import init_redis
    from irisvue.extensions import cors, db, jwt, migrate
    from irisvue.storage import init_storage

    app = Flask(__name__, instance_path=os.environ.get("IRISVUE_INSTANCE_PATH") or None)
    settings = from_env(os.environ, Path(app.instance_path))
    if config:
        settings.update(config)
        if settings["IRISVUE_ENV"] == "production":
            check_production(settings)
    settings.update(
        {k: v for k, v in _derived_settings(settings).items() if k not in (config or {})}
    )
    app.config.update(settings)

    observability.configure_logging(app.config["LOG_LEVEL"])
    if app.config["TRUSTED_PROXIES"] > 0:
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]

    db.init_app(app)
    with app.app_context():
        for engine in db.engines.values():
            dbpool.watch_hangups(engine)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR))
    jwt.init_app(app)
    if app.config["CORS_ORIGINS"]:
        # Browsers call the API only; probes and /metrics need no CORS work.
        cors.init_app(
            app,
            resources={r"/api/*": {"origins": app.config["CORS_ORIGINS"]}},
            supports_credentials=False,
        )
    app.session_interface = StatelessSessionInterface()
    init_redis(app)
    init_storage(app)

    observability.init_request_context(app)
    guards.init_request_guards(app)
    errors.register_jwt_handlers(jwt)
    observability.init_metrics(app)
    docs.init_docs(app)  # Swagger UI's assets from the package: /api/docs works offline
    cli.init_app(app)

    api = IrisVueApi(app)
    for feature in FEATURES:
        feature.init_app(app, api)
    errors.register_error_handlers(app)  # after Api(): ours replace smorest's
    return app
