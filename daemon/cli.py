"""`flask --app webadmin mail ...`: ingest one .eml file by hand, re-ingest a quarantined message."""

from __future__ import annotations

import pathlib

import click
from flask import current_app
from flask.cli import AppGroup

from daemon.ingest import ingest, reingest_quarantined

mail_cli = AppGroup("mail", help="Inbound mail: ingest files, re-ingest quarantined messages.")


@mail_cli.command("ingest")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path))
def ingest_command(path: pathlib.Path) -> None:
    """Ingest FILE.eml exactly as if it had arrived in the mailbox; print what happened."""
    outcome = ingest(path.read_bytes(), current_app.extensions["settings"], source=f"cli:{path.name}")
    click.echo(outcome.describe())


@mail_cli.command("quarantine-reingest")
@click.argument("quarantine_id")
def quarantine_reingest_command(quarantine_id: str) -> None:
    """Run quarantined message ID through ingestion again."""
    try:
        outcome = reingest_quarantined(quarantine_id, current_app.extensions["settings"])
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(outcome.describe())
