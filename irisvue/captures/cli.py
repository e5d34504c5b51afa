"""`flask keys ...`: master key rotation for users' data keys."""

from __future__ import annotations

import click
from flask.cli import AppGroup

keys_cli = AppGroup("keys", help="Users' data keys and the master keys that wrap them.")


@keys_cli.command("rewrap")
@click.option(
    "--batch-size", type=click.IntRange(1, 10_000), default=100, show_default=True,
    help="Keys re-wrapped per committed batch.",
)  # fmt: skip
def rewrap_command(batch_size: int) -> None:
    """Re-wrap every user data key under the primary (first) master key of MASTER_KEYS.

    Rotation: prepend a new key to MASTER_KEYS, deploy, run this, then remove
    the old key once it reports no failures.
    """
    from irisvue.crypto.user_keys import rewrap_all

    report = rewrap_all(batch_size)
    click.echo(
        f"rewrapped {report.rewrapped} key(s) under master key {report.primary_id!r}; "
        f"{report.failed} failed"
    )
    if report.failed:
        raise click.exceptions.Exit(1)
