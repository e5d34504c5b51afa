"""`flask consent ...`: publish consent texts, verify a user's ledger."""

from __future__ import annotations

import uuid
from pathlib import Path

import click
from flask.cli import AppGroup

consent_cli = AppGroup("consent", help="Consent texts and the consent ledger.")


@consent_cli.command("load-documents")
@click.option(
    "--dir",
    "directory",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Directory of <type>.<jurisdiction>.<locale>.v<N>.md files (default: the package's).",
)
def load_documents_command(directory: Path | None) -> None:
    """Publish new consent text versions; idempotent; refuses edits to published ones."""
    from irisvue.consent.documents import DocumentLoadError, load_documents

    try:
        result = load_documents(directory)
    except DocumentLoadError as exc:
        raise click.ClickException(str(exc)) from None
    for name in result.published:
        click.echo(f"published {name}")
    click.echo(f"{len(result.published)} published, {result.unchanged} unchanged")


@consent_cli.command("verify")
@click.argument("user_id", type=click.UUID)
def verify_command(user_id: uuid.UUID) -> None:
    """Verify a user's consent hash chain; exits 1 when it is broken."""
    from irisvue.consent.anchor import verify

    report = verify(user_id)
    if report.intact:
        click.echo(f"intact: {report.checked} record(s), head {report.head_hash}")
        return
    click.echo(
        f"BROKEN at seq {report.broken_at_seq} (record {report.broken_record_id}): "
        f"{report.reason}; {report.checked} record(s) checked",
        err=True,
    )
    raise SystemExit(1)


def publish_documents_step() -> str:
    """`flask release` step: publish the package's new consent text versions."""
    from irisvue.consent.documents import DocumentLoadError, load_documents

    try:
        result = load_documents()
    except DocumentLoadError as exc:
        raise click.ClickException(str(exc)) from None
    return f"consent texts: {len(result.published)} published, {result.unchanged} unchanged"
