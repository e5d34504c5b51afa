"""`flask release`: once per deploy, migrations then each feature's release step."""

from __future__ import annotations

from collections.abc import Callable

import click
from flask import Flask, current_app

RELEASE_EXTENSION = "irisvue.release_steps"

# A step returns one line for the operator; it raises click.ClickException to stop.
ReleaseStep = Callable[[], str]


def add_release_step(app: Flask, step: ReleaseStep) -> None:
    """Run `step` in `flask release`, after the migrations (features call this)."""
    app.extensions.setdefault(RELEASE_EXTENSION, []).append(step)


@click.command("release")
def release_command() -> None:
    """Run once per deploy: apply migrations, then each feature's release step."""
    import flask_migrate

    flask_migrate.upgrade()
    lines = ["migrated"]
    for step in current_app.extensions.get(RELEASE_EXTENSION, []):
        lines.append(step())
    click.echo("; ".join(lines))


def init_app(app: Flask) -> None:
    app.cli.add_command(release_command)
