"""Bulk seeder: N realistic tickets (20% open) with their first message, requesters, moderators and sent
acknowledgements, written with insert_many in batches, so 100,000 tickets take well under a minute.

    .venv/bin/python bench/seed.py MONGO_URI N          e.g. mongodb://127.0.0.1:27018/helpdesk 100000

(the command line drops and rebuilds secondary indexes around the load: run it while the app is stopped).

Importable: `seed_tickets(database, count)` takes a pymongo Database. Documents are written as the models
store them (field names of models/tickets.py, users.py, outbox.py), bypassing the app's code on purpose:
the benchmarks and the query-plan test measure reads, not the seeding.
"""

from __future__ import annotations

import csv
import datetime as dt
import pathlib
import random
import sys
import time
from dataclasses import dataclass, field

from bson import ObjectId
from pymongo import IndexModel
from pymongo.database import Database

CORPUS_TICKETS = pathlib.Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "tickets" / "dev.csv"
BATCH = 5000
OPEN = ("new", "open", "pending", "escalated")
CLOSED = ("resolved", "closed")
PRIORITIES = ("low", "medium", "medium", "high", "urgent")
CATEGORIES = ("billing", "network", "database", "account", "hardware", "security")
SKILLS = ("billing", "vpn", "postgres", "sso", "backup", "printers")
MODERATORS = 8
STAFF_DOMAIN = "staff.example.test"
SEEDED_COLLECTIONS = ("tickets", "ticket_messages", "outbox", "users")


@dataclass
class Seeded:
    """What a seeding run wrote, for benchmarks that need real numbers, people and ids."""

    tickets: int
    first_number: int
    last_number: int
    moderators: list[ObjectId] = field(default_factory=list)
    moderator_emails: list[str] = field(default_factory=list)
    requester_emails: list[str] = field(default_factory=list)
    seconds: float = 0.0


def corpus_subjects(limit: int = 5000) -> list[str]:
    """Subjects from the shared ticket corpus when it is there, else generated ones."""
    subjects: list[str] = []
    if CORPUS_TICKETS.is_file():
        with CORPUS_TICKETS.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row.get("subject"):
                    subjects.append(row["subject"][:200])
                if len(subjects) >= limit:
                    break
    if not subjects:
        things = ("VPN", "invoice", "printer", "login", "backup", "database", "laptop", "email")
        faults = ("fails", "is slow", "drops every hour", "shows an error", "cannot be found", "was charged twice")
        subjects = [f"The {t} {f}" for t in things for f in faults]
    return subjects


def seed_tickets(
    database: Database,
    count: int,
    *,
    open_share: float = 0.2,
    seed: int = 20261201,
    with_messages: bool = True,
    with_outbox: bool = True,
    progress: bool = False,
    defer_indexes: bool = False,
) -> Seeded:
    """Insert `count` tickets (numbers after any existing ones), their requesters and moderators.

    defer_indexes drops the secondary indexes of the written collections and builds them again at the end
    (several times faster for large N; only while nothing else uses the database).
    """
    began = time.perf_counter()
    saved = _drop_indexes(database) if defer_indexes else {}
    rng = random.Random(seed)
    subjects = corpus_subjects()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    year_ago = now - dt.timedelta(days=365)
    users = database["users"]

    moderators, moderator_emails = [], []
    for i in range(MODERATORS):
        address = f"seed-mod{i}@{STAFF_DOMAIN}"
        found = users.find_one({"email": address}, {"_id": 1})
        if found is None:
            skills = [SKILLS[i % len(SKILLS)], SKILLS[(i + 2) % len(SKILLS)]]
            doc = {"email": address, "name": f"Moderator {i}", "role": "moderator", "skills": skills}
            found = {"_id": users.insert_one({**doc, "active": True, "created_at": year_ago}).inserted_id}
        moderators.append(found["_id"])
        moderator_emails.append(address)

    counter = database["counters"].find_one({"_id": "ticket_number"}) or {}
    last = max(int(counter.get("value", 0)), _max_number(database))
    first = last + 1
    requester_count = max(1, count // 20)
    # distinct per run (from the first number), so seeding twice adds requesters instead of colliding
    requester_emails = [f"customer{i}.{first}@seed.example" for i in range(requester_count)]
    requester_ids = [ObjectId() for _ in range(requester_count)]
    for start in range(0, requester_count, BATCH):
        batch = [
            {
                "_id": rid,
                "email": mail,
                "name": "",
                "role": "user",
                "skills": [],
                "active": True,
                "created_at": year_ago,
            }
            for rid, mail in zip(
                requester_ids[start : start + BATCH], requester_emails[start : start + BATCH], strict=True
            )
        ]
        users.insert_many(batch, ordered=False)

    span = 365 * 24 * 3600
    tickets_out, messages_out, outbox_out = [], [], []
    for offset in range(count):
        number = first + offset
        created = year_ago + dt.timedelta(seconds=int(span * offset / max(1, count)) + rng.randint(0, 600))
        updated = min(now, created + dt.timedelta(minutes=rng.randint(5, 60 * 24 * 10)))
        is_open = rng.random() < open_share
        status = rng.choice(OPEN) if is_open else rng.choice(CLOSED)
        who = rng.randrange(requester_count)
        requester = requester_emails[who]
        skill = rng.choice(SKILLS)
        assignee = moderators[rng.randrange(MODERATORS)] if rng.random() < 0.85 else None
        ticket_id = ObjectId()
        source = f"<seed-{number}-{seed}@seed.example>"
        subject = rng.choice(subjects)
        ticket = {
            "_id": ticket_id,
            "number": number,
            "subject": subject,
            "status": status,
            "priority": rng.choice(PRIORITIES),
            "category": rng.choice(CATEGORIES),
            "required_skills": [skill],
            "language": "en",
            "summary": f"Customer reports: {subject}",
            "helpful_notes": "",
            "requester": requester_ids[who],
            "requester_email": requester,
            "participants": [requester],
            "routing_reason": "seeded",
            "escalated": status == "escalated",
            "triage": {"state": "done", "attempts": 1, "next_attempt_at": created, "provider": "local",
                       "completed_at": created + dt.timedelta(seconds=2), "generation": 0},
            "source_message_id": source,
            "created_at": created,
            "updated_at": updated,
            "last_message_at": updated,
            "message_count": 1,
            "first_response_at": created + dt.timedelta(minutes=30),
            "sla_due_at": created + dt.timedelta(hours=24),
            "sla_breached": False,
        }  # fmt: skip
        if assignee is not None:
            ticket["assignee"] = assignee
            ticket["assigned_at"] = created
        if not is_open:
            ticket["resolved_at"] = updated
        tickets_out.append(ticket)
        if with_messages:
            body = f"Hello support,\n\n{subject}. It started on {created:%d %B} and happens every day.\n\nThanks"
            messages_out.append(
                {"ticket": ticket_id, "ticket_number": number, "kind": "inbound", "public": True,
                 "message_id": source, "references": [], "from_address": requester, "from_name": "",
                 "to": ["support@example.test"], "cc": [], "subject": subject, "sent_at": created,
                 "text": body, "new_text": body, "html": "", "attachments": [], "auto_submitted": False,
                 "created_at": created}
            )  # fmt: skip
        if with_outbox:
            outbox_out.append(
                {"message_id": f"<ack-seed-{number}-{seed}@example.test>", "kind": "ack", "ticket_number": number,
                 "to": [requester], "subject": f"[#{number}] {subject}", "text": "We received your request.",
                 "html": "", "in_reply_to": source, "references": [source], "headers": [], "state": "sent",
                 "attempts": 1, "next_attempt_at": created, "created_at": created, "sent_at": created}
            )  # fmt: skip
        if len(tickets_out) >= BATCH:
            _flush(database, tickets_out, messages_out, outbox_out)
            if progress:
                print(f"  seeded {offset + 1}/{count} tickets, {time.perf_counter() - began:.1f}s", flush=True)
    _flush(database, tickets_out, messages_out, outbox_out)
    database["counters"].update_one({"_id": "ticket_number"}, {"$max": {"value": first + count - 1}}, upsert=True)
    _restore_indexes(database, saved)
    return Seeded(
        tickets=count,
        first_number=first,
        last_number=first + count - 1,
        moderators=moderators,
        moderator_emails=moderator_emails,
        requester_emails=requester_emails,
        seconds=time.perf_counter() - began,
    )


def _max_number(database: Database) -> int:
    top = database["tickets"].find_one({}, {"number": 1}, sort=[("number", -1)])
    return int(top["number"]) if top else 0


def _drop_indexes(database: Database) -> dict[str, list[tuple[list, dict]]]:
    saved: dict[str, list[tuple[list, dict]]] = {}
    for name in SEEDED_COLLECTIONS:
        for index_name, info in database[name].index_information().items():
            if index_name == "_id_" or "text" in dict(info["key"]).values():
                continue  # a text index cannot be recreated from index_information(): it stays
            options = {k: v for k, v in info.items() if k in ("unique", "sparse", "partialFilterExpression")}
            saved.setdefault(name, []).append((list(info["key"]), {"name": index_name, **options}))
            database[name].drop_index(index_name)
    return saved


def _restore_indexes(database: Database, saved: dict[str, list[tuple[list, dict]]]) -> None:
    for name, indexes in saved.items():  # one createIndexes per collection: DocumentDB builds them together
        database[name].create_indexes([IndexModel(keys, **options) for keys, options in indexes])


def _flush(database: Database, tickets: list[dict], messages: list[dict], outbox: list[dict]) -> None:
    for name, rows in (("tickets", tickets), ("ticket_messages", messages), ("outbox", outbox)):
        if rows:
            database[name].insert_many(rows, ordered=False)
            rows.clear()


def main() -> None:
    import pymongo

    if len(sys.argv) != 3:
        raise SystemExit("usage: bench/seed.py MONGO_URI COUNT")
    uri, count = sys.argv[1], int(sys.argv[2])
    client: pymongo.MongoClient = pymongo.MongoClient(uri)
    database = client.get_default_database("helpdesk")
    seeded = seed_tickets(database, count, progress=True, defer_indexes=True)
    rate = seeded.tickets / seeded.seconds if seeded.seconds else 0
    print(
        f"seeded {seeded.tickets} tickets #{seeded.first_number}-#{seeded.last_number} with messages, acks, "
        f"{len(seeded.requester_emails)} requesters, {len(seeded.moderators)} moderators "
        f"in {seeded.seconds:.1f}s ({rate:.0f} tickets/s)"
    )


if __name__ == "__main__":
    main()
