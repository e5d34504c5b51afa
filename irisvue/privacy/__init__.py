"""Privacy rights: data export, account erasure, request deadlines and retention."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api


def init_app(app: Flask, api: Api) -> None:
    """The privacy API, its jobs, `flask privacy`, and the daily retention sweep."""
    from irisvue.auth.signals import account_deletion_requested
    from irisvue.jobs.registry import register_periodic
    from irisvue.jobs.results import register_result
    from irisvue.privacy import export_jobs, jobs  # noqa: F401 - register their handlers
    from irisvue.privacy.cli import privacy_cli
    from irisvue.privacy.erasure_start import on_account_deletion_requested
    from irisvue.privacy.export_schemas import ExportResultSchema
    from irisvue.privacy.export_services import EXPORT_KIND, present_result
    from irisvue.privacy.retention import run_sweep
    from irisvue.privacy.routes import blp

    hour = int(app.config["RETENTION_SWEEP_HOUR"]) % 24
    register_periodic(
        app,
        "irisvue.retention.sweep",
        run_sweep,
        cron=f"0 {hour} * * *",
        job_timeout=3600,
        result_ttl=7 * 24 * 3600,
    )
    # weak=False: the receiver is a module function, kept for the process's life.
    account_deletion_requested.connect(on_account_deletion_requested, weak=False)
    app.cli.add_command(privacy_cli)
    register_result(
        api, EXPORT_KIND, ExportResultSchema, name="ExportResult", presenter=present_result
    )
    api.register_blueprint(blp)
