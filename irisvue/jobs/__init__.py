"""Background work: the outbox, RQ dispatch, the runner, the cron scheduler
(infrastructure: never imports a feature), and the job-status API."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api


def init_app(app: Flask, api: Api) -> None:
    """Queues, the mail handlers, the periodic outbox relay, `flask jobs`, the API."""
    from irisvue import mail  # noqa: F401 - registers the mail job handlers
    from irisvue.jobs.cli import jobs_cli
    from irisvue.jobs.queues import init_jobs
    from irisvue.jobs.registry import register_periodic
    from irisvue.jobs.results import document_union
    from irisvue.jobs.routes import blp
    from irisvue.jobs.runner import run_relay
    from irisvue.jobs.schemas import JOB_EVENT_SCHEMA
    from irisvue.jobs.streams import init_stream_limits

    init_jobs(app)
    init_stream_limits(app)
    interval = int(app.config["JOB_RELAY_INTERVAL_SECONDS"])
    register_periodic(
        app,
        "irisvue.outbox.relay",
        run_relay,
        interval=interval,
        job_timeout=max(interval, 30),
        # A relay still waiting when the next one is due is redundant: let it expire.
        ttl=interval,
        result_ttl=interval * 5,
    )
    app.cli.add_command(jobs_cli)
    document_union(api)
    api.spec.components.schema("JobEvent", JOB_EVENT_SCHEMA)
    api.register_blueprint(blp)
