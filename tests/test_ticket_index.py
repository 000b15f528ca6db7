"""The panel's in-memory ticket list follows every write, from any process, through the change journal."""

from __future__ import annotations

import threading
import time

import mongoengine
from bson import ObjectId

from models import Ticket, TicketMessage, journal, utcnow
from tests.conftest import make_settings
from tests.web_support import app, bearer, make_ticket, make_user  # noqa: F401 - fixtures
from webadmin import create_app


def _numbers(client, headers: dict[str, str], query: str = "") -> list[int]:  # noqa: ANN001
    response = client.get(f"/api/tickets?per_page=100{query}", headers=headers)
    assert response.status_code == 200, response.get_json()
    return [item["number"] for item in response.get_json()["items"]]


def test_journal_has_no_gaps_and_no_lost_entries_under_concurrent_writers(db: str) -> None:
    written: list[ObjectId] = []
    lock = threading.Lock()

    def writer() -> None:
        for _ in range(15):
            ticket_id = ObjectId()
            journal.record(tickets=[ticket_id])
            with lock:
                written.append(ticket_id)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    entries = journal.read_after(0)
    assert [seq for seq, _ in entries] == list(range(1, 61))
    assert sorted(str(i) for _, entry in entries for i in entry["t"]) == sorted(str(i) for i in written)
    assert journal.head() == 60


def test_head_probes_past_a_lagging_hint(db: str) -> None:
    for _ in range(3):
        journal.record(tickets=[ObjectId()])
    mongoengine.get_db()["counters"].update_one({"_id": journal.HINT_ID}, {"$set": {"value": 1}})
    assert journal.head() == 3
    assert journal.record(tickets=[ObjectId()]) == 4  # a writer with a stale hint still lands after the end


def test_prune_drops_only_old_entries_and_the_journal_carries_on(db: str) -> None:
    for _ in range(3):
        journal.record(tickets=[ObjectId()])
    collection = mongoengine.get_db()[journal.COLLECTION]
    collection.update_many(
        {"_id": {"$in": [journal.key(1), journal.key(2)]}}, {"$set": {"at": utcnow() - journal.KEEP * 2}}
    )
    assert journal.prune() == 2
    assert [seq for seq, _ in journal.read_after(2)] == [3]
    assert journal.record(tickets=[ObjectId()]) == 4


def test_list_and_detail_follow_writes_made_outside_the_panel(app, db: str) -> None:  # noqa: ANN001, F811
    admin = make_user("admin@example.test", role="admin")
    headers = bearer(app, admin)
    client = app.test_client()
    first = make_ticket(subject="Printer on fire")
    assert _numbers(client, headers) == [first.number]  # builds the index

    # Writes as the daemon makes them: a queryset update, a document save, a new thread message.
    second = make_ticket(subject="VPN down", priority="high")
    Ticket.objects(id=first.id).update_one(set__status="closed", set__priority="urgent")
    assert _numbers(client, headers, "&status=closed") == [first.number]
    assert _numbers(client, headers, "&priority=high") == [second.number]
    assert _numbers(client, headers, "&q=vpn") == [second.number]

    TicketMessage(
        ticket=second,
        ticket_number=second.number,
        kind="inbound",
        message_id="<follow-up@customer.example>",
        from_address="customer@example.test",
        text="Any news?",
        created_at=utcnow(),
    ).save()
    thread = client.get(f"/api/tickets/{second.number}", headers=headers).get_json()["messages"]
    assert [m["text"] for m in thread][-1] == "Any news?"

    Ticket.objects(id=second.id).delete()
    assert client.get(f"/api/tickets/{second.number}", headers=headers).status_code == 404
    assert _numbers(client, headers) == [first.number]


def test_bulk_ingest_path_is_journaled(app, db: str, settings) -> None:  # noqa: ANN001, F811
    from daemon.bulk import ingest_batch

    admin = make_user("admin@example.test", role="admin")
    headers = bearer(app, admin)
    client = app.test_client()
    assert _numbers(client, headers) == []
    raws = [
        f"From: c{i}@customer.example\r\nTo: support@example.test\r\nSubject: Bulk {i}\r\n"
        f"Message-ID: <bulk-{i}@customer.example>\r\n\r\nBody {i}\r\n".encode()
        for i in range(3)
    ]
    ingest_batch([(f"test-{i}", raw) for i, raw in enumerate(raws)], settings)
    listed = client.get("/api/tickets", headers=headers).get_json()["items"]
    assert sorted(item["subject"] for item in listed) == ["Bulk 0", "Bulk 1", "Bulk 2"]
    detail = client.get(f"/api/tickets/{listed[0]['number']}", headers=headers).get_json()
    assert [m["text"].strip() for m in detail["messages"]] == [f"Body {listed[0]['subject'][-1]}"]


def test_periodic_rebuild_heals_a_write_the_journal_missed(db: str, mail_server) -> None:  # noqa: ANN001
    web = create_app(make_settings(db, mail_server, ticket_index_rebuild_seconds=0))
    admin = make_user("admin@example.test", role="admin")
    headers = bearer(web, admin)
    client = web.test_client()
    ticket = make_ticket(subject="Before")
    assert _numbers(client, headers) == [ticket.number]
    # A write whose journal entry was lost (say the writer crashed between the two).
    Ticket._get_collection().update_one({"_id": ticket.id}, {"$set": {"status": "closed"}})
    deadline = time.monotonic() + 10
    while _numbers(client, headers, "&status=closed") != [ticket.number]:
        assert time.monotonic() < deadline, "the background rebuild never picked the write up"
        time.sleep(0.1)
