"""Triage notes at scale: BENCH_TICKETS tickets of history (default 100,000, 80% resolved or closed, a third of
those with a staff reply), the similar-ticket index built as the nightly retrain builds it, then the notes of
BENCH_NEW new tickets (texts of the shared corpus) computed one ticket at a time as the triage job does:
the ticket's input, its facts, its three most similar earlier tickets with outcome and first staff reply,
and the extractive summary. Goal: < 50 ms per ticket at 100,000 tickets.

    .venv/bin/python bench/triage_notes.py            (BENCH_TICKETS=100000 BENCH_NEW=300 BENCH_DB_PORT=27151)

It starts its own database on its own port and folder and purges it at the end.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from seed import CORPUS_TICKETS, seed_tickets  # noqa: E402

from models import Ticket, TicketMessage, connect_db, ensure_all_indexes, next_ticket_number  # noqa: E402
from triage.notes import notes_for, notes_text  # noqa: E402
from triage.similar import build_similar_index, index_store  # noqa: E402
from triage.summary import extractive_summary  # noqa: E402
from triage.textprep import ticket_input  # noqa: E402

TICKETS = int(os.environ.get("BENCH_TICKETS", "100000"))
NEW = int(os.environ.get("BENCH_NEW", "300"))
DB_PORT = int(os.environ.get("BENCH_DB_PORT", "27151"))
DB_DIR = ROOT / ".cache" / "bench-notes-db"
REPLIES = (
    "Please restart the service and clear the cache; that fixed it for other customers.",
    "We refunded the duplicate charge; it appears on your statement within five days.",
    "The outage was on our side and is fixed; please try again.",
)


def db(action: str) -> None:
    env = {**os.environ, "DB_DIR": str(DB_DIR), "DB_PORT": str(DB_PORT), "PYTHON": sys.executable}
    subprocess.run(["bash", str(ROOT / "scripts" / "db.sh"), action], env=env, check=True, capture_output=True)


def add_staff_replies(database, moderator) -> int:  # noqa: ANN001
    """A staff reply on every third resolved or closed ticket, an hour after it was opened."""
    rows, written = [], 0
    closed = database.tickets.find({"status": {"$in": ["resolved", "closed"]}}, {"number": 1, "created_at": 1})
    for position, ticket in enumerate(closed):
        if position % 3:
            continue
        rows.append(
            {"ticket": ticket["_id"], "ticket_number": ticket["number"], "kind": "outbound", "public": True,
             "message_id": f"<reply-{uuid.uuid4().hex}@example.test>", "author": moderator,
             "text": REPLIES[position % len(REPLIES)], "new_text": REPLIES[position % len(REPLIES)],
             "created_at": ticket["created_at"] + dt.timedelta(hours=1)}
        )  # fmt: skip
        if len(rows) >= 5000:
            database.ticket_messages.insert_many(rows, ordered=False)
            written, rows = written + len(rows), []
    if rows:
        database.ticket_messages.insert_many(rows, ordered=False)
        written += len(rows)
    return written


def new_tickets(count: int) -> list[Ticket]:
    """`count` new tickets with the corpus' subjects and bodies (from its end, unlike the seeded subjects)."""
    with CORPUS_TICKETS.open(newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("body")][-count:]
    tickets = []
    for row in rows:
        ticket = Ticket(
            number=next_ticket_number(),
            subject=row["subject"] or "",
            requester_email="bench@example.test",
            source_message_id=f"<{uuid.uuid4().hex}@bench.example>",
        ).save()
        TicketMessage(
            ticket=ticket,
            ticket_number=ticket.number,
            kind="inbound",
            message_id=ticket.source_message_id,
            text=row["body"],
            new_text=row["body"],
        ).save()
        tickets.append(ticket)
    return tickets


def main() -> None:
    if not CORPUS_TICKETS.is_file():
        print(f"skipped: {CORPUS_TICKETS} not found (the shared corpus lives beside the project)", file=sys.stderr)
        return
    db("purge")
    db("start")
    try:
        connect_db(f"mongodb://127.0.0.1:{DB_PORT}/helpdesk_bench_notes")
        ensure_all_indexes()
        database = Ticket._get_db()
        began = time.perf_counter()
        seeded = seed_tickets(database, TICKETS, defer_indexes=True, progress=TICKETS >= 100_000)
        replies = add_staff_replies(database, seeded.moderators[0])
        print(f"history: {TICKETS} tickets, {replies} staff replies, seeded in {time.perf_counter() - began:.1f} s")
        with tempfile.TemporaryDirectory() as model_dir:
            began = time.perf_counter()
            indexed = build_similar_index(model_dir)
            size = os.path.getsize(index_store(model_dir).path) / 2**20
            print(f"index: {indexed} resolved tickets in {time.perf_counter() - began:.1f} s, {size:.1f} MB on disk")
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            tickets = new_tickets(NEW)
            timings, stages, found, facts = [], {"input": [], "notes": [], "summary": []}, 0, 0
            for ticket in tickets:
                started = time.perf_counter()
                item = ticket_input(ticket)
                read = time.perf_counter()
                notes = notes_for(ticket, item, model_dir)
                notes_text(notes)
                noted = time.perf_counter()
                extractive_summary(item.subject, item.body)
                ended = time.perf_counter()
                timings.append((ended - started) * 1000)
                stages["input"].append((read - started) * 1000)
                stages["notes"].append((noted - read) * 1000)
                stages["summary"].append((ended - noted) * 1000)
                found += bool(notes["similar_tickets"])
                facts += bool(notes["facts"])
            rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        timings.sort()
        p95 = timings[int(0.95 * (len(timings) - 1))]
        mean = statistics.mean(timings)
        print(
            f"notes per ticket at {TICKETS} tickets ({NEW} new tickets, one at a time, input read included): "
            f"p50 {statistics.median(timings):.1f} ms, p95 {p95:.1f} ms, mean {mean:.1f} ms, "
            f"max {timings[-1]:.1f} ms (goal < 50 ms per ticket: mean {'met' if mean < 50 else 'NOT met'}, "
            f"p95 {'met' if p95 < 50 else 'NOT met'})"
        )
        print(
            "by stage, p50 / mean ms: "
            + ", ".join(f"{k} {statistics.median(v):.1f} / {statistics.mean(v):.1f}" for k, v in stages.items())
            + " (input: the triage job reads it anyway; notes: facts, index, similar tickets and their replies)"
        )
        print(f"similar tickets found for {found}/{NEW}, facts for {facts}/{NEW}")
        print(f"max RSS {rss_before:.0f} MB before the queries, {rss_after:.0f} MB after (index memory-mapped)")
        print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    finally:
        db("purge")


if __name__ == "__main__":
    main()
