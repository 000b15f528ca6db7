# ruff: noqa: F811 - pytest fixtures imported from tests.web_support
"""The ticket lists as a user sees them: straight from the database (a write by another process shows at
once), search by words, number or address, filters, and who sees what."""

from __future__ import annotations

import json

from pymongo import MongoClient

from models import Ticket, utcnow
from tests.web_support import app, bearer, make_ticket, make_user  # noqa: F401


def _numbers(client, headers: dict[str, str], query: str = "") -> list[int]:  # noqa: ANN001 - a FlaskClient
    response = client.get(f"/api/tickets?per_page=100{query}", headers=headers)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["total"] == len(body["items"])
    return [item["number"] for item in body["items"]]


def test_a_ticket_written_by_another_process_is_listed_and_found_at_once(app, db) -> None:
    admin = make_user("admin@example.test", role="admin")
    headers, client = bearer(app, admin), app.test_client()
    first = make_ticket(subject="Printer jams")
    assert _numbers(app.test_client(), headers) == [first.number]

    # The daemon, another process with its own connection, stores a ticket and closes the first one.
    with MongoClient(db) as other:
        tickets = other.get_default_database()["tickets"]
        now = utcnow()
        tickets.insert_one(
            {
                "number": first.number + 1,
                "subject": "Invoice charged twice",
                "status": "new",
                "priority": "high",
                "requester_email": "payer@example.test",
                "source_message_id": "<other-process@example.test>",
                "required_skills": [],
                "created_at": now,
                "updated_at": now,
            }
        )
        tickets.update_one({"number": first.number}, {"$set": {"status": "closed"}})

    assert _numbers(client, headers) == [first.number + 1, first.number]  # newest first
    assert _numbers(client, headers, "&status=active") == [first.number + 1]
    assert _numbers(client, headers, "&q=invoice") == [first.number + 1]
    detail = client.get(f"/api/tickets/{first.number + 1}", headers=headers)
    assert detail.status_code == 200 and detail.get_json()["subject"] == "Invoice charged twice"


def test_search_by_words_number_and_address(app, db) -> None:
    admin = make_user("admin@example.test", role="admin")
    headers, client = bearer(app, admin), app.test_client()
    vpn = make_ticket(subject="VPN drops every hour", requester="ann@example.test")
    refund = make_ticket(
        subject="Refund for the March invoice", requester="bob@example.test"
    )  # ingest stores addresses lower-cased
    make_ticket(subject="Printer on fire", summary="The office printer is smoking", requester="cy@example.test")

    assert _numbers(client, headers, "&q=dropping") == [vpn.number]  # words, stemmed: "drops"
    assert _numbers(client, headers, "&q=INVOICE refund") == [refund.number]
    assert len(_numbers(client, headers, "&q=smoking")) == 1  # the summary is searched too
    assert _numbers(client, headers, f"&q={vpn.number}") == [vpn.number]
    assert _numbers(client, headers, f"&q=%23{refund.number}") == [refund.number]  # "#N"
    assert _numbers(client, headers, "&q=bob@example.TEST") == [refund.number]
    assert _numbers(client, headers, "&q=hour") == [vpn.number]
    assert _numbers(client, headers, "&q=nothing-like-this") == []
    assert _numbers(client, headers, "&q=99999999999999999999") == []  # beyond any ticket number: no match, no 500
    page = client.get("/queue?q=dropping", headers=headers).get_data(as_text=True)
    assert "VPN drops every hour" in page and "Refund" not in page


def test_filters_and_pagination_follow_the_database(app, db) -> None:
    admin = make_user("admin@example.test", role="admin")
    headers, client = bearer(app, admin), app.test_client()
    made = [make_ticket(subject=f"Ticket {i}", priority="urgent" if i % 2 else "low") for i in range(7)]
    Ticket.objects(id=made[0].id).update_one(set__category="billing")

    assert _numbers(client, headers, "&priority=urgent") == [t.number for t in reversed(made) if t.priority == "urgent"]
    assert _numbers(client, headers, "&category=billing") == [made[0].number]
    page = client.get("/api/tickets?per_page=3&page=3", headers=headers).get_json()
    assert page["total"] == 7 and [t["number"] for t in page["items"]] == [made[0].number]
    assert client.get("/api/tickets?per_page=3&page=9", headers=headers).get_json()["items"] == []


def test_moderators_see_their_own_and_unassigned_tickets_for_their_skills_only(app, db) -> None:
    ana = make_user("ana@example.test", skills=("vpn",))
    bo = make_user("bo@example.test", skills=("billing",))
    requester = make_user("ann@example.test", role="user", password=None)
    mine = make_ticket(subject="Assigned to Ana", assignee=ana, required_skills=("billing",))
    fits = make_ticket(subject="Needs VPN", required_skills=("vpn", "sso"), requester="ann@example.test")
    other = make_ticket(subject="Needs billing", required_skills=("billing",))
    taken = make_ticket(subject="Bo's VPN ticket", assignee=bo, required_skills=("vpn",))
    client = app.test_client()

    ana_headers = bearer(app, ana)
    assert _numbers(client, ana_headers) == [fits.number, mine.number]
    assert _numbers(client, ana_headers, "&scope=mine") == [mine.number]
    assert _numbers(client, ana_headers, "&scope=unassigned") == [fits.number]
    assert _numbers(client, ana_headers, "&q=billing") == []  # search never widens what one may see
    assert client.get(f"/api/tickets/{taken.number}", headers=ana_headers).status_code == 403
    assert _numbers(client, bearer(app, bo)) == [taken.number, other.number]
    assert _numbers(client, bearer(app, requester)) == [fits.number]

    # Routing (another process) assigns the VPN ticket to Bo: it leaves Ana's list at once.
    Ticket.objects(id=fits.id).update_one(set__assignee=bo.id)
    assert _numbers(client, ana_headers) == [mine.number]


def test_users_list_is_paginated_and_filtered_by_role(app, db) -> None:
    admin = make_user("admin@example.test", role="admin")
    for name in ("cy", "ann", "bo"):
        make_user(f"{name}@example.test", role="user", password=None)
    make_user("mod@example.test")
    client, headers = app.test_client(), bearer(app, admin)

    first = client.get("/api/users?page_size=2", headers=headers)
    assert first.status_code == 200
    assert [u["email"] for u in first.get_json()] == ["admin@example.test", "ann@example.test"]
    assert json.loads(first.headers["X-Pagination"])["total"] == 5
    third = client.get("/api/users?page_size=2&page=3", headers=headers).get_json()
    assert [u["email"] for u in third] == ["mod@example.test"]
    requesters = client.get("/api/users?role=user", headers=headers).get_json()
    assert [u["email"] for u in requesters] == ["ann@example.test", "bo@example.test", "cy@example.test"]
    assert client.get("/api/users?role=boss", headers=headers).status_code == 422
    assert client.get("/api/users?page_size=1000", headers=headers).status_code == 422


def test_a_users_page_past_the_end_is_empty_not_an_error(app, db) -> None:
    """Regression (schemathesis): a huge page number overflowed the database's 64-bit skip: a 500."""
    admin = make_user("admin@example.test", role="admin")
    response = app.test_client().get("/api/users?page=99999999999999999999", headers=bearer(app, admin))
    assert response.status_code == 200 and response.get_json() == []


def test_ticket_detail_carries_the_triage_notes_for_staff_only(app, db) -> None:
    from triage.facts import extract_facts
    from triage.notes import ticket_fields

    admin = make_user("admin@example.test", role="admin")
    requester = make_user("ann@example.test", role="user", password=None)
    body = "Order 48213 was charged twice, the portal says error 0x80070005."
    earlier = make_ticket(subject="Charged twice for order 1177", status="resolved")
    similar = {"number": earlier.number, "similarity": 0.61, "subject": earlier.subject, "status": "resolved"}
    notes = {"facts": extract_facts("Charged twice", body), "similar_tickets": [{**similar, "category": "billing"}]}
    ticket = make_ticket(subject="Charged twice", body=body, requester="ann@example.test", **ticket_fields(notes))
    client = app.test_client()

    detail = client.get(f"/api/tickets/{ticket.number}", headers=bearer(app, admin)).get_json()
    assert detail["facts"]["order_numbers"] == ["48213"] and detail["facts"]["error_codes"] == ["0x80070005"]
    [found] = detail["similar_tickets"]
    assert found["number"] == earlier.number and found["similarity"] == 0.61 and found["status"] == "resolved"
    own = client.get(f"/api/tickets/{ticket.number}", headers=bearer(app, requester)).get_json()
    assert "facts" not in own and "similar_tickets" not in own  # AI notes are for staff
    schema = client.get("/api/openapi.json").get_json()["components"]["schemas"]
    assert {"facts", "similar_tickets"} <= set(schema["TicketDetail"]["properties"])


def test_a_listed_ticket_shows_the_same_summary_as_its_page(app, db) -> None:
    """The list is read as stored documents (no model objects): its rows must say what the ticket's own page says,
    the assignee's address and the defaults of fields a stored ticket lacks included."""
    admin = make_user("admin@example.test", role="admin")
    agent = make_user("agent@example.test", role="moderator", skills=["vpn"])
    headers, client = bearer(app, admin), app.test_client()
    make_ticket(subject="Assigned", assignee=agent, priority="urgent", escalated=True, sla_due_at=utcnow())
    make_ticket(subject="Nobody's yet", status="new")
    with MongoClient(db) as other:  # written by another program, without the fields it has no value for
        now = utcnow()
        other.get_default_database()["tickets"].insert_one(
            {"number": 999, "requester_email": "bare@example.test", "source_message_id": "<bare@example.test>",
             "created_at": now, "updated_at": now}
        )  # fmt: skip

    listed = client.get("/api/tickets", headers=headers).get_json()["items"]

    assert len(listed) == 3
    summary_keys = set(listed[0])
    for row in listed:
        page = client.get(f"/api/tickets/{row['number']}", headers=headers).get_json()
        assert row == {key: page[key] for key in summary_keys}
    assert {row["subject"]: row["assignee"] for row in listed} == {
        "Assigned": "agent@example.test",
        "Nobody's yet": None,
        "": None,
    }
