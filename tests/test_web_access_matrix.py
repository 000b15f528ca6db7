# ruff: noqa: F811 - pytest fixtures imported from tests.web_support
"""Every route x (anonymous, requester, moderator, another moderator, admin): exact status codes, and
nothing of another person's ticket leaks into any response."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from flask import Flask
from flask_jwt_extended import create_access_token, decode_token

from models import AttachmentRef, Skill, TicketMessage
from tests.web_support import app, make_ticket, make_user, status_link_token  # noqa: F401

PERSONAS = ("anonymous", "requester", "moderator", "other_moderator", "admin")
SECRET_NOTE = "SECRET-NOTE-7731"
AI_SUMMARY = "AI-SUMMARY-5120"
OTHER_SUBJECT = "OTHER-CUSTOMER-4410"


@dataclass
class World:
    app: Flask
    tokens: dict[str, str]
    ids: dict[str, str]


@pytest.fixture()
def world(app, settings) -> World:
    for name in ("vpn", "billing"):
        Skill(name=name).save()
    mod = make_user("mod@example.test", skills=("vpn",))
    other = make_user("other@example.test", skills=("billing",))
    admin = make_user("admin@example.test", role="admin")
    requester = make_user("customer@example.test", role="user", password=None)
    ticket = make_ticket(assignee=mod, required_skills=("vpn",), summary=AI_SUMMARY, helpful_notes=AI_SUMMARY)
    TicketMessage(
        ticket=ticket, ticket_number=ticket.number, kind="note", public=False, message_id="<note-1@x>", text=SECRET_NOTE
    ).save()
    inbound = TicketMessage.objects(ticket_number=ticket.number, kind="inbound").first()
    attachment = AttachmentRef(filename="log.txt", content_type="text/plain", size=5)
    attachment.file.put(b"hello", content_type="text/plain")
    inbound.attachments = [attachment]
    inbound.save()
    foreign = make_ticket(
        subject=OTHER_SUBJECT, requester="else@example.test", required_skills=("billing",), body="Invoice is wrong."
    )
    tokens = {}
    with app.app_context():
        for persona, user in (
            ("requester", requester),
            ("moderator", mod),
            ("other_moderator", other),
            ("admin", admin),
        ):
            tokens[persona] = create_access_token(str(user.id), additional_claims={"role": user.role})
    ids = {
        "n": str(ticket.number),
        "foreign": str(foreign.number),
        "msg": str(inbound.id),
        "other_id": str(other.id),
        "status_token": status_link_token(settings, ticket),
    }
    return World(app=app, tokens=tokens, ids=ids)


# (method, path, json body or None, expected codes in PERSONAS order)
API_ROUTES = [
    ("GET", "/api/me", None, (401, 200, 200, 200, 200)),
    ("GET", "/api/tickets", None, (401, 200, 200, 200, 200)),
    ("GET", "/api/tickets/{n}", None, (401, 200, 200, 403, 200)),
    ("GET", "/api/tickets/{foreign}", None, (401, 403, 403, 200, 200)),
    ("GET", "/api/tickets/99999", None, (401, 404, 404, 404, 404)),
    ("POST", "/api/tickets/{n}/notes", {"text": "looking"}, (401, 403, 201, 403, 201)),
    ("POST", "/api/tickets/{n}/status", {"status": "open"}, (401, 403, 200, 403, 200)),
    ("POST", "/api/tickets/{n}/escalate", {"reason": "needs a senior"}, (401, 403, 200, 403, 200)),
    (
        "POST",
        "/api/tickets/{n}/assign",
        {"assignee_email": "mod@example.test", "reason": "r"},
        (401, 403, 403, 403, 200),
    ),
    ("GET", "/api/users", None, (401, 403, 403, 403, 200)),
    ("PATCH", "/api/users/{other_id}", {"name": "Other"}, (401, 403, 403, 403, 200)),
    # skills are granted by admins: a moderator may not grant themselves any (issue 10, item 14)
    ("PATCH", "/api/me/skills", {"skills": ["vpn", "billing"]}, (401, 403, 403, 403, 200)),
    # customers open tickets for their own address; staff do not (integrations use API keys)
    ("POST", "/api/tickets", {"subject": "New one", "description": "Details"}, (401, 201, 403, 403, 403)),
]
PAGE_ROUTES = [
    ("GET", "/queue", (302, 403, 200, 200, 200)),
    ("GET", "/queue/counts", (302, 403, 200, 200, 200)),
    ("GET", "/tickets/{n}", (302, 403, 200, 403, 200)),
    ("POST", "/tickets/{n}/note", (302, 403, 302, 403, 302)),
    ("GET", "/tickets/{n}/attachments/{msg}/0", (302, 403, 200, 403, 200)),
    ("GET", "/tickets/99999", (302, 403, 404, 404, 404)),
    ("GET", "/me/skills", (302, 403, 200, 200, 200)),
    ("POST", "/me/skills", (302, 403, 403, 403, 302)),
    ("POST", "/tickets/{n}/status-links/revoke", (302, 403, 302, 403, 302)),
    ("GET", "/dashboard", (302, 403, 200, 200, 200)),
    ("GET", "/status/{status_token}", (200, 200, 200, 200, 200)),
    ("GET", "/status/not-a-token", (404, 404, 404, 404, 404)),
    ("GET", "/healthz", (200, 200, 200, 200, 200)),
    *[
        ("GET", f"/admin/{view}", (302, 403, 403, 403, 200))
        for view in (
            "",
            "users/",
            "skills/",
            "categories/",
            "tickets_admin/",
            "escalations/",
            "triage_review/",
            "quarantine/",
            "outbox/",
            "mail_grants/",
            "mailboxes/",
            "audit/",
        )
    ],
    ("POST", "/admin/tickets_admin/action/", (302, 403, 403, 403, 302)),
    ("GET", "/admin/api_keys/", (302, 403, 403, 403, 200)),
    # the customer portal: a customer reaches only tickets of their own address; staff use the queue
    ("GET", "/portal/", (302, 200, 403, 403, 403)),
    ("GET", "/portal/tickets/{n}", (302, 200, 403, 403, 403)),
    ("GET", "/portal/tickets/{foreign}", (302, 404, 403, 403, 403)),
    ("GET", "/portal/tickets/99999", (302, 404, 403, 403, 403)),
    ("GET", "/portal/tickets/{n}/attachments/{msg}/0", (302, 200, 403, 403, 403)),
    ("GET", "/portal/tickets/{foreign}/attachments/{msg}/0", (302, 404, 403, 403, 403)),
    ("POST", "/portal/tickets/{n}/reply", (302, 302, 403, 403, 403)),
    ("POST", "/portal/tickets/{foreign}/reply", (302, 404, 403, 403, 403)),
    ("POST", "/portal/tickets/{foreign}/close", (302, 404, 403, 403, 403)),
    ("POST", "/portal/tickets/{foreign}/reopen", (302, 404, 403, 403, 403)),
    ("GET", "/portal/new", (200, 200, 200, 200, 200)),
    ("GET", "/portal/sign-in", (200, 302, 200, 200, 200)),
    ("GET", "/portal/sign-in/not-a-token", (404, 404, 404, 404, 404)),
    ("GET", "/portal/confirm/not-a-token", (404, 404, 404, 404, 404)),
    ("GET", "/portal/from-status/{status_token}", (200, 302, 200, 200, 200)),
    ("GET", "/portal/from-status/not-a-token", (404, 404, 404, 404, 404)),
]


OWN_SUBJECT = "VPN drops every hour"
# Which ticket subjects each persona may ever see (the status link is its own credential).
MAY_SEE = {
    "anonymous": set(),
    "requester": {OWN_SUBJECT},
    "moderator": {OWN_SUBJECT},
    "other_moderator": {OTHER_SUBJECT},
    "admin": {OWN_SUBJECT, OTHER_SUBJECT},
}


def _assert_no_leak(persona: str, path: str, status: int, body: str) -> None:
    allowed = MAY_SEE[persona] | ({OWN_SUBJECT} if path.startswith("/status/") else set())
    for subject in {OWN_SUBJECT, OTHER_SUBJECT} - allowed:
        assert subject not in body, (persona, path, subject)
    if persona not in ("moderator", "admin"):
        assert SECRET_NOTE not in body and AI_SUMMARY not in body, (persona, path)
    if status >= 300:
        assert OWN_SUBJECT not in body and SECRET_NOTE not in body, (persona, path)


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"), API_ROUTES, ids=[f"{m} {p}" for m, p, *_ in API_ROUTES]
)
def test_api_access(world: World, method: str, path: str, body: dict | None, expected: tuple[int, ...]) -> None:
    url = path.format(**world.ids)
    for persona, code in zip(PERSONAS, expected, strict=True):
        headers = {"Authorization": f"Bearer {world.tokens[persona]}"} if persona in world.tokens else {}
        response = world.app.test_client().open(url, method=method, json=body, headers=headers)
        text = response.get_data(as_text=True)
        assert response.status_code == code, (persona, url, text[:300])
        assert response.is_json, (persona, url)
        _assert_no_leak(persona, path, response.status_code, text)


@pytest.mark.parametrize(("method", "path", "expected"), PAGE_ROUTES, ids=[f"{m} {p}" for m, p, _ in PAGE_ROUTES])
def test_page_access(world: World, method: str, path: str, expected: tuple[int, ...]) -> None:
    url = path.format(**world.ids)
    for persona, code in zip(PERSONAS, expected, strict=True):
        client = world.app.test_client()
        data = {"text": "note", "action": "close", "rowid": []}
        if persona in world.tokens:
            client.set_cookie("access_token_cookie", world.tokens[persona])
            with world.app.app_context():
                data["csrf_token"] = decode_token(world.tokens[persona])["csrf"]
        response = client.open(url, method=method, data=data if method == "POST" else None)
        text = response.get_data(as_text=True)
        assert response.status_code == code, (persona, url, text[:300])
        if code == 302 and persona == "anonymous":
            sign_in = "/portal/sign-in" if path.startswith("/portal/") else "/login"
            assert response.headers["Location"].startswith(sign_in)
        _assert_no_leak(persona, path, response.status_code, text)


def test_requester_sees_only_their_public_thread(world: World) -> None:
    client = world.app.test_client()
    headers = {"Authorization": f"Bearer {world.tokens['requester']}"}
    listing = client.get("/api/tickets", headers=headers).get_json()
    assert [t["number"] for t in listing["items"]] == [int(world.ids["n"])]
    detail = client.get(f"/api/tickets/{world.ids['n']}", headers=headers).get_json()
    assert {m["kind"] for m in detail["messages"]} == {"inbound"}
    assert "summary" not in detail and "routing_reason" not in detail
    page = client.get(f"/status/{world.ids['status_token']}").get_data(as_text=True)
    assert "VPN drops every hour" in page
    assert SECRET_NOTE not in page and AI_SUMMARY not in page and OTHER_SUBJECT not in page


def test_moderator_queue_shows_own_and_matching_unassigned_only(world: World) -> None:
    client = world.app.test_client()
    mine = client.get("/api/tickets", headers={"Authorization": f"Bearer {world.tokens['moderator']}"}).get_json()
    theirs = client.get("/api/tickets", headers={"Authorization": f"Bearer {world.tokens['other_moderator']}"})
    everything = client.get("/api/tickets", headers={"Authorization": f"Bearer {world.tokens['admin']}"}).get_json()
    assert [t["number"] for t in mine["items"]] == [int(world.ids["n"])]
    assert [t["number"] for t in theirs.get_json()["items"]] == [int(world.ids["foreign"])]
    assert everything["total"] == 2
