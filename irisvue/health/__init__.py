"""Liveness and readiness probes."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api


def init_app(app: Flask, api: Api) -> None:
    from irisvue.health.probe import LivenessProbe
    from irisvue.health.routes import LIVENESS_BODY, LIVENESS_PATHS, blp

    api.register_blueprint(blp)
    app.wsgi_app = LivenessProbe(app.wsgi_app, LIVENESS_PATHS, LIVENESS_BODY)  # type: ignore[method-assign]
