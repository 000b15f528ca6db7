"""`scripts/db.sh backup FILE` / `restore FILE` bring back a helpdesk whose tickets, threads and attachments
match the original, even after the database was purged."""

from __future__ import annotations

import email
import email.policy
import os
import pathlib
import subprocess
from typing import Any

import mongoengine
import pytest

from config import Settings
from daemon.ingest import ingest
from daemon.outcomes import Created, Threaded
from models import Ticket, TicketMessage
from tests.conftest import ROOT, TEST_DB_PORT, TEST_SLOT
from tests.daemon_support import raw_email, reply_to
from tests.support import MailStack

DB_ENV = {"DB_DIR": str(ROOT / ".cache" / f"test-db-{TEST_SLOT}"), "DB_PORT": str(TEST_DB_PORT)}


def db_script(*args: str) -> None:
    """scripts/db.sh for this test slot's embedded server (the one the `db` fixture uses)."""
    env = {**os.environ, **DB_ENV, "PYTHON": str(ROOT / ".venv" / "bin" / "python")}
    result = subprocess.run(["bash", str(ROOT / "scripts" / "db.sh"), *args], env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"scripts/db.sh {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"


def snapshot() -> dict[str, Any]:
    """Every document of every collection (tickets, messages, GridFS files and chunks, ...) and, through
    the models, each ticket's thread with its attachments' bytes."""
    database = mongoengine.get_db()
    documents = {
        name: sorted(database[name].find(), key=lambda d: str(d["_id"]))
        for name in sorted(database.list_collection_names())
    }
    threads = {}
    for ticket in Ticket.objects.order_by("number"):
        threads[ticket.number] = [
            (m.kind, m.message_id, m.text, [(a.filename, a.file.read() if a.file else None) for a in m.attachments])
            for m in TicketMessage.objects(ticket=ticket).order_by("created_at")
        ]
    return {"documents": documents, "threads": threads}


def test_backup_and_restore_round_trip_tickets_threads_and_attachments(
    settings: Settings, mail: MailStack, tmp_path: pathlib.Path
) -> None:
    if os.environ.get("TEST_MONGO_URI"):
        pytest.skip("scripts/db.sh backs up the embedded server; use mongodump/mongorestore for MongoDB")
    photo = bytes(range(256)) * 40  # binary, not text: every byte must come back
    first = email.message_from_bytes(raw_email(subject="Printer on fire"), policy=email.policy.default)
    first.add_attachment(photo, maintype="image", subtype="png", filename="printer.png")
    created = ingest(bytes(first), settings)
    threaded = ingest(reply_to(bytes(first), body="It is still burning."), settings)
    other = ingest(raw_email(sender="bob@example.test", subject="VPN drops"), settings)
    assert isinstance(created, Created) and isinstance(threaded, Threaded) and isinstance(other, Created)
    before = snapshot()
    assert before["threads"][created.ticket_number][0][3] == [("printer.png", photo)]
    assert len(before["threads"][created.ticket_number]) >= 2 and len(before["threads"]) == 2

    backup = tmp_path / "helpdesk.tar.gz"
    db_script("backup", str(backup))
    assert backup.stat().st_size > 0

    db_script("purge")  # the machine lost its database
    db_script("start")
    assert Ticket.objects.count() == 0 and TicketMessage.objects.count() == 0

    db_script("restore", str(backup))
    after = snapshot()
    assert after["threads"] == before["threads"]
    assert after["documents"] == before["documents"]
    # and the restored server keeps working: the next email threads into the restored ticket
    again = ingest(reply_to(bytes(first), body="Fire is out now."), settings)
    assert isinstance(again, Threaded) and again.ticket_number == created.ticket_number
