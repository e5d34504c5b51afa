"""Consent texts and the append-only, hash-chained consent ledger."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api


def init_app(app: Flask, api: Api) -> None:
    """The consent API, `flask consent`, publishing new texts at release, and the
    GeoIP database behind the jurisdiction suggestion (opened here, once)."""
    from irisvue.cli import add_release_step
    from irisvue.consent.cli import consent_cli, publish_documents_step
    from irisvue.consent.jurisdiction import init_geoip
    from irisvue.consent.keys import ledger_keys
    from irisvue.consent.routes import blp

    app.extensions["irisvue.ledger_keys"] = ledger_keys(app.config)  # fails fast if malformed
    init_geoip(app)
    add_release_step(app, publish_documents_step)
    app.cli.add_command(consent_cli)
    api.register_blueprint(blp)
