"""`flask privacy ...`: the register of privacy requests and the retention sweep."""

from __future__ import annotations

from datetime import timedelta

import click
from flask.cli import AppGroup

privacy_cli = AppGroup("privacy", help="Privacy requests (export, erasure) and retention.")

DUE_SOON = timedelta(days=3)


@privacy_cli.command("requests")
def requests_command() -> None:
    """List open privacy requests, oldest deadline first; flag overdue and due within 3 days."""
    from irisvue.models.base import as_utc, utcnow
    from irisvue.privacy.services import open_requests

    now = utcnow()
    rows = open_requests()
    if not rows:
        click.echo("no open privacy requests")
        return
    for request in rows:
        due = as_utc(request.due_at)
        if due <= now:
            flag = "OVERDUE"
        elif due - now <= DUE_SOON:
            flag = "DUE SOON"
        else:
            flag = ""
        click.echo(
            f"{request.id}  {request.kind:<8} {request.jurisdiction:<8} "
            f"received {as_utc(request.received_at):%Y-%m-%d %H:%M}  "
            f"due {due:%Y-%m-%d %H:%M}  {flag}".rstrip()
        )


@privacy_cli.command("sweep")
def sweep_command() -> None:
    """Run the retention sweep now (the worker's cron runs it daily)."""
    from irisvue.privacy.retention import sweep

    counts = sweep()
    click.echo(" ".join(f"{name}={value}" for name, value in counts.items()))
