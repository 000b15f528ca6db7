"""Every query the daemon's jobs and ingestion issue is served by a declared index (the server's `explain`)."""

from __future__ import annotations

import json

import mongoengine
import pytest
from bson import ObjectId

from models import (
    MessageLedger,
    OutboundEmail,
    QuarantinedEmail,
    Ticket,
    TicketMessage,
    User,
    connect_db,
    ensure_all_indexes,
    utcnow,
)
from models.claims import TOP_LEVEL, free_filter
from models.tickets import OPEN_STATUSES, TRIAGE_LEASE
from tests.conftest import TEST_DB_PORT
from tests.support import refresh_planner_statistics

ROWS = 2000  # enough that the planner would rather scan a collection than use an index it cannot use


@pytest.fixture(scope="module")
def history(db_server: str) -> None:
    """Seeded once for the module (explain only reads)."""
    connect_db(db_server.rstrip("/") + "/helpdesk_test")
    database = mongoengine.get_db()
    for name in database.list_collection_names():
        database[name].delete_many({})
    ensure_all_indexes()
    now = utcnow()
    users = User._get_collection().insert_many(
        [{"email": f"u{i}@example.test", "role": "user", "active": True, "skills": []} for i in range(ROWS)]
    )
    tickets = [
        Ticket(
            number=i + 1,
            requester=users.inserted_ids[i],
            requester_email=f"u{i}@example.test",
            source_message_id=f"<{i}@example.test>",
            status="closed",
            sla_due_at=now,
        ).to_mongo()
        for i in range(ROWS)
    ]
    ids = Ticket._get_collection().insert_many(tickets).inserted_ids
    TicketMessage._get_collection().insert_many(
        [
            TicketMessage(
                ticket=ticket_id, ticket_number=i + 1, kind="inbound", message_id=f"<{i}@example.test>"
            ).to_mongo()
            for i, ticket_id in enumerate(ids)
        ]
    )
    OutboundEmail._get_collection().insert_many(
        [
            OutboundEmail(kind="ack", to=["a@b.c"], subject="s", message_id=f"<a{i}@x>", state="sent").to_mongo()
            for i in range(ROWS)
        ]
    )
    MessageLedger._get_collection().insert_many(
        [MessageLedger(message_id=f"<{i}@example.test>", outcome="created").to_mongo() for i in range(ROWS)]
    )
    QuarantinedEmail._get_collection().insert_many(
        [{"reason": "x", "received_at": now, "reingested_at": now} for _ in range(ROWS)]
    )
    refresh_planner_statistics(TEST_DB_PORT + 27000)


def _plan(document: type, query: dict, sort: dict | None = None) -> dict:
    command: dict = {"find": document._get_collection_name(), "filter": query, "limit": 20}
    if sort:
        command["sort"] = sort
    return document._get_db().command("explain", command)["queryPlanner"]


def _nodes(plan: dict) -> list[dict]:
    found = [plan]
    for child in plan.get("Plans", []) + ([plan["Plan"]] if "Plan" in plan else []):
        found += _nodes(child)
    return found


def uses_an_index(plan: dict) -> bool:
    """No sequential scan, and some index condition on the documents (DocumentDB reads a whole collection as
    an index scan whose only condition is the shard key)."""
    nodes = _nodes(plan)
    if any(node.get("Node Type") == "Seq Scan" for node in nodes):
        return False
    conditions = [str(node["Index Cond"]) for node in nodes if "Index Cond" in node]
    return any("shard_key_value" not in condition or " AND " in condition for condition in conditions)


def _queries() -> list[tuple[str, type, dict, dict | None]]:
    from daemon.outbox import due_filters as outbox_due
    from triage.queue import due_filters as triage_due
    from triage.sla import overdue_filter

    now = utcnow()
    someone = ObjectId()
    return [
        *[
            (f"triage claim {i}", Ticket, {**f, **free_filter(TRIAGE_LEASE, now)}, {"triage.next_attempt_at": 1})
            for i, f in enumerate(triage_due(now))
        ],
        *[
            (f"outbox claim {i}", OutboundEmail, {**f, **free_filter(TOP_LEVEL, now)}, {"next_attempt_at": 1})
            for i, f in enumerate(outbox_due(now))
        ],
        ("sla overdue", Ticket, overdue_filter(now), None),
        ("sla missing deadline", Ticket, Ticket.objects(status__in=OPEN_STATUSES, sla_due_at=None)._query, None),
        ("[#N] lookup", Ticket, Ticket.objects(number=17)._query, None),
        ("outbox: the mailboxes of tickets", Ticket, {"number": {"$in": [17, 18, 19]}}, None),
        ("open load", Ticket, Ticket.objects(assignee=someone, status__in=OPEN_STATUSES)._query, None),
        (
            "first message",
            TicketMessage,
            TicketMessage.objects(ticket=someone, kind="inbound")._query,
            {"created_at": 1},
        ),
        ("requester", User, User.objects(email="u5@example.test")._query, None),
        ("requesters of a batch", User, {"email": {"$in": ["u1@example.test", "u2@example.test"]}}, None),
        ("staff", User, User.objects(role__in=["moderator"], active=True)._query, None),
        ("ledger of a batch", MessageLedger, {"_id": {"$in": ["a", "b"]}}, None),
        ("source message", Ticket, Ticket.objects(source_message_id="<5@example.test>")._query, None),
        ("ack by Message-ID", OutboundEmail, OutboundEmail.objects(message_id="<a5@x>")._query, None),
        ("reply's notification id", TicketMessage, {"message_id": "<5@example.test>", "notice_message_id": None}, None),
        ("reopen on reply", Ticket, {"_id": someone, "status": {"$in": ["resolved", "closed", "pending"]}}, None),
        (
            "re-ingest requests",
            QuarantinedEmail,
            {"reingest_requested_at": {"$lte": now}, **free_filter(TOP_LEVEL, now)},
            None,
        ),
        ("highest number", Ticket, Ticket.objects(number__gt=0)._query, {"number": -1}),
        ("triage batch claimed by _id", Ticket, {"_id": {"$in": [someone, ObjectId()]}, **triage_due(now)[0]}, None),
        (
            "first messages of a batch",
            TicketMessage,
            {"ticket": {"$in": [someone, ObjectId()]}, "kind": "inbound"},
            None,
        ),
        ("triage waiting", Ticket, Ticket.objects(triage__state="pending")._query, None),
        ("oldest untriaged", Ticket, {"triage.state": {"$in": ["pending", "running"]}}, {"number": 1}),
        (
            "open loads",
            Ticket,
            {"assignee": {"$in": [someone, ObjectId()]}, "status": {"$in": list(OPEN_STATUSES)}},
            None,
        ),
    ]


NAMES = [
    "triage claim 0",
    "triage claim 1",
    "outbox claim 0",
    "outbox claim 1",
    "sla overdue",
    "sla missing deadline",
    "[#N] lookup",
    "outbox: the mailboxes of tickets",
    "open load",
    "first message",
    "requester",
    "requesters of a batch",
    "staff",
    "ledger of a batch",
    "source message",
    "ack by Message-ID",
    "reply's notification id",
    "reopen on reply",
    "re-ingest requests",
    "highest number",
    "triage batch claimed by _id",
    "first messages of a batch",
    "triage waiting",
    "oldest untriaged",
    "open loads",
]


def test_every_query_is_checked(history: None) -> None:
    assert sorted(q[0] for q in _queries()) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_daemon_query_uses_an_index(history: None, name: str) -> None:
    _, document, query, sort = next(q for q in _queries() if q[0] == name)
    plan = _plan(document, query, sort)
    assert uses_an_index(plan), f"{name}: {json.dumps(plan, default=str)[:800]}"


def test_a_query_on_an_undeclared_field_is_caught(history: None) -> None:
    """The check itself can fail: a filter on a field no index covers scans the collection."""
    assert not uses_an_index(_plan(Ticket, {"helpful_notes": "x"}))
    assert not uses_an_index(_plan(Ticket, {}, {"summary": 1}))
