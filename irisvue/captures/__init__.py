"""Iris photographs: consent-gated, metadata-stripped, encrypted uploads."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api


def init_app(app: Flask, api: Api) -> None:
    """The master keyring, the captures API, `flask keys`, and destruction on withdrawal."""
    from irisvue.captures import jobs
    from irisvue.captures.cli import keys_cli
    from irisvue.captures.routes import blp
    from irisvue.captures.schemas import DestructionResultSchema
    from irisvue.consent.signals import biometric_consent_withdrawn
    from irisvue.crypto.user_keys import init_keyring
    from irisvue.jobs.results import register_result

    # A bad MASTER_KEYS entry stops the app at start-up, not at the first upload.
    init_keyring(app)
    biometric_consent_withdrawn.connect(jobs.on_biometric_consent_withdrawn, weak=False)
    app.cli.add_command(keys_cli)
    register_result(api, jobs.DESTROY_JOB, DestructionResultSchema, name="DestructionResult")
    api.register_blueprint(blp)
