"""Liveness and readiness probes."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api


def init_app(app: Flask, api: Api) -> None:
    from irisvue.health.routes import blp

    api.register_blueprint(blp)
