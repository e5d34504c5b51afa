"""Swagger UI's assets served from the `flask-swagger-ui` wheel, so `/api/docs` works offline.

flask-smorest renders `/api/docs` with script and style URLs under
`OPENAPI_SWAGGER_UI_URL`; this blueprint answers those URLs from the package's
`dist/` folder instead of a CDN. It is a plain Flask blueprint, so it stays out
of the OpenAPI document.
"""

from __future__ import annotations

from pathlib import Path

import flask_swagger_ui
from flask import Blueprint, Flask, Response, send_from_directory

SWAGGER_UI_DIST = Path(flask_swagger_ui.__file__).resolve().parent / "dist"
ASSETS_URL = "/api/docs/assets"

# Swagger UI's validator badge (StandaloneLayout only; smorest uses BaseLayout)
# would send the spec's URL to validator.swagger.io: off, whatever the layout.
SWAGGER_UI_CONFIG = {"validatorUrl": None}

docs_assets = Blueprint("docs_assets", __name__)


@docs_assets.get(f"{ASSETS_URL}/<path:filename>")
def swagger_ui_asset(filename: str) -> Response:
    """One file of Swagger UI's dist folder (404 for anything outside it)."""
    return send_from_directory(SWAGGER_UI_DIST, filename, max_age=24 * 3600)


def init_docs(app: Flask) -> None:
    """Serve the assets where smorest's template looks for them (call before `Api(app)`)."""
    app.config.setdefault("OPENAPI_SWAGGER_UI_URL", f"{ASSETS_URL}/")
    app.config.setdefault("OPENAPI_SWAGGER_UI_CONFIG", SWAGGER_UI_CONFIG)
    app.register_blueprint(docs_assets)
