"""`flask jobs`: the outbox relay by hand."""

from __future__ import annotations

import click
from flask.cli import AppGroup

jobs_cli = AppGroup("jobs", help="Background jobs: the outbox relay.")


@jobs_cli.command("relay")
@click.option(
    "--min-age",
    "min_age",
    type=float,
    default=30.0,
    show_default=True,
    help="Only rows left undispatched for at least this many seconds.",
)
def relay_command(min_age: float) -> None:
    """Hand every job the outbox still holds to RQ (inline without REDIS_URL)."""
    from irisvue.jobs.outbox import relay

    click.echo(f"relayed {relay(min_age_seconds=min_age)} job(s)")
