"""What `run_daemon.py ingest` and `run_daemon.py quarantine-reingest` do: connect, act, describe the outcome."""

from __future__ import annotations

import pathlib

from config import Settings
from daemon.ingest import ingest, reingest_quarantined
from models import connect_db, ensure_all_indexes


def ingest_file(path: pathlib.Path, settings: Settings) -> str:
    """Ingest one .eml file exactly as if it had arrived in the mailbox (acknowledgement included)."""
    connect_db(settings.mongo_uri)
    ensure_all_indexes()
    outcome = ingest(path.read_bytes(), settings, source=f"cli:{path.name}")
    return outcome.describe()


def reingest_one(quarantine_id: str, settings: Settings) -> str:
    """Run quarantined email `quarantine_id` through ingestion again; LookupError when there is none."""
    connect_db(settings.mongo_uri)
    ensure_all_indexes()
    return reingest_quarantined(quarantine_id, settings).describe()
