"""`flask` CLI commands."""

from __future__ import annotations

import click
from flask import Flask
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


@click.command("release")
def release_command() -> None:
    """Run once per deploy: apply migrations, then publish new consent texts."""
    import flask_migrate

    from irisvue.consent.documents import DocumentLoadError, load_documents

    flask_migrate.upgrade()
    try:
        result = load_documents()
    except DocumentLoadError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"migrated; consent texts: {len(result.published)} published, {result.unchanged} unchanged"
    )


def register(app: Flask) -> None:
    app.cli.add_command(jobs_cli)
    app.cli.add_command(release_command)

    from irisvue.consent.cli import consent_cli

    app.cli.add_command(consent_cli)

    from irisvue.captures.cli import keys_cli

    app.cli.add_command(keys_cli)

    from irisvue.privacy.cli import privacy_cli

    app.cli.add_command(privacy_cli)
