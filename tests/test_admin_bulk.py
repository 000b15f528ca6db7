# ruff: noqa: F811 - pytest fixtures imported from tests.web_support
"""Flask-Admin bulk actions on tickets (reassign, close, re-triage) through the real admin endpoints, with
a cookie session as a browser has one: what changes, what is recorded, and who is refused."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from models import AuditEvent, Ticket, TicketMessage, TriageState, User
from tests.web_support import app, cookie_login, make_ticket, make_user  # noqa: F401

LIST = "/admin/tickets_admin/"
ACTION = "/admin/tickets_admin/action/"
BULK_REASSIGN = "/admin/tickets_admin/bulk-reassign/"
ACTION_FORM_CSRF = re.compile(r'<form id="action_form"[^>]*>\s*<input type="hidden" name="csrf_token" value="([^"]+)"')


@dataclass
class Team:
    admin: User
    ana: User
    bo: User
    first: Ticket
    second: Ticket
    bystander: Ticket


@pytest.fixture()
def team(app: Flask) -> Team:
    admin = make_user("boss@example.test", role="admin")
    ana = make_user("ana@example.test", skills=("vpn",))
    bo = make_user("bo@example.test", skills=("vpn",))
    first = make_ticket(subject="VPN drops every hour", assignee=ana, triage=TriageState(state="done"))
    second = make_ticket(
        subject="Cannot reach the intranet",
        assignee=ana,
        status="escalated",
        escalated=True,
        escalation_reason="angry customer",
        triage=TriageState(state="done"),
    )
    bystander = make_ticket(subject="Printer jammed", assignee=bo, triage=TriageState(state="done"))
    return Team(admin=admin, ana=ana, bo=bo, first=first, second=second, bystander=bystander)


def admin_session(app: Flask, email: str = "boss@example.test") -> tuple[FlaskClient, str]:
    """A signed-in browser-like client, and the CSRF value the ticket list's action form carries."""
    client = app.test_client()
    cookie_login(client, email)
    page = client.get(LIST)
    assert page.status_code == 200
    match = ACTION_FORM_CSRF.search(page.get_data(as_text=True))
    assert match, "the ticket list has no action form"
    return client, match.group(1)


def run_action(client: FlaskClient, csrf: str | None, action: str, *tickets: Ticket):  # noqa: ANN201
    data: dict[str, object] = {"action": action, "rowid": [str(t.id) for t in tickets], "url": LIST}
    if csrf is not None:
        data["csrf_token"] = csrf
    return client.post(ACTION, data=data)


def snapshot() -> list[tuple]:
    return [
        (t.number, t.status, t.assignee.email if t.assignee else None, t.escalated, t.triage.state)
        for t in Ticket.objects.order_by("number")
    ]


def test_ticket_list_offers_the_bulk_actions(app: Flask, team: Team) -> None:
    client = app.test_client()
    cookie_login(client, "boss@example.test")
    page = client.get(LIST).get_data(as_text=True)
    for name, label in (("reassign", "Reassign"), ("close", "Close"), ("retriage", "Re-triage")):
        assert f"modelActions.execute('{name}');\">{label}</a>" in page
    assert page.count('name="rowid"') == 3


def test_bulk_reassign_moves_only_the_selected_tickets_and_audits_who_and_why(app: Flask, team: Team) -> None:
    client, csrf = admin_session(app)
    chosen = run_action(client, csrf, "reassign", team.first, team.second)
    assert chosen.status_code == 302
    location = urlsplit(chosen.headers["Location"])
    assert location.path == BULK_REASSIGN
    ids = parse_qs(location.query)["ids"][0]
    assert set(ids.split(",")) == {str(team.first.id), str(team.second.id)}

    form = client.get(chosen.headers["Location"])
    assert form.status_code == 200
    text = html.unescape(form.get_data(as_text=True))
    assert "Reassign 2 ticket(s)" in text
    assert "VPN drops every hour (ana@example.test)" in text
    assert "Cannot reach the intranet (ana@example.test)" in text
    assert "Printer jammed" not in text
    assert '<option value="bo@example.test">' in text

    done = client.post(
        BULK_REASSIGN,
        data={"ids": ids, "assignee": "bo@example.test", "reason": "ana is on leave", "csrf_token": csrf},
    )
    assert done.status_code == 302
    assert urlsplit(done.headers["Location"]).path == LIST
    assert "Reassigned 2 ticket(s) to bo@example.test." in client.get(LIST).get_data(as_text=True)

    first, second, bystander = (Ticket.objects.get(id=t.id) for t in (team.first, team.second, team.bystander))
    assert first.assignee == team.bo and second.assignee == team.bo
    assert bystander.assignee == team.bo and bystander.updated_at == team.bystander.updated_at
    # assigning someone resolves the escalation
    assert second.escalated is False and second.status == "open"
    for ticket in (first, second):
        [event] = AuditEvent.objects(action="assign", ticket_number=ticket.number)
        assert event.actor == "boss@example.test"
        assert event.reason == "ana is on leave"
        assert event.detail == "ana@example.test -> bo@example.test"
        assert event.target == f"ticket:{ticket.number}"
    assert AuditEvent.objects(ticket_number=team.bystander.number).count() == 0
    assert (
        TicketMessage.objects(
            ticket_number=first.number,
            kind="event",
            text="assigned ana@example.test -> bo@example.test by boss@example.test",
        ).count()
        == 1
    )


@pytest.mark.parametrize(
    ("assignee", "reason", "error"),
    [
        ("bo@example.test", "   ", "Please give a reason."),
        ("customer@example.test", "hand it to the customer", "Pick an active moderator or admin."),
        ("gone@example.test", "the leaver", "Pick an active moderator or admin."),
        ("nobody@example.test", "typo", "Pick an active moderator or admin."),
    ],
)
def test_bulk_reassign_refuses_without_reason_or_to_someone_not_active_staff(
    app: Flask, team: Team, assignee: str, reason: str, error: str
) -> None:
    make_user("customer@example.test", role="user", password=None)
    gone = make_user("gone@example.test")
    User.objects(id=gone.id).update_one(set__active=False)
    client, csrf = admin_session(app)
    before = snapshot()
    response = client.post(
        BULK_REASSIGN,
        data={"ids": f"{team.first.id},{team.second.id}", "assignee": assignee, "reason": reason, "csrf_token": csrf},
    )
    assert response.status_code == 200
    assert error in response.get_data(as_text=True)
    assert snapshot() == before
    assert AuditEvent.objects(action="assign").count() == 0


def test_bulk_close_closes_only_the_selected_tickets(app: Flask, team: Team) -> None:
    client, csrf = admin_session(app)
    response = run_action(client, csrf, "close", team.first, team.second)
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == LIST
    assert "Closed 2 ticket(s)." in client.get(LIST).get_data(as_text=True)

    first, second, bystander = (Ticket.objects.get(id=t.id) for t in (team.first, team.second, team.bystander))
    assert (first.status, second.status, bystander.status) == ("closed", "closed", "open")
    assert first.resolved_at is not None and second.resolved_at is not None and bystander.resolved_at is None
    assert second.escalated is False  # a closed ticket leaves the escalation list
    # who closed it is on each ticket's thread
    assert (
        TicketMessage.objects(
            ticket_number=first.number, kind="event", text="status open -> closed by boss@example.test"
        ).count()
        == 1
    )
    assert (
        TicketMessage.objects(
            ticket_number=second.number, kind="event", text="status escalated -> closed by boss@example.test"
        ).count()
        == 1
    )
    assert TicketMessage.objects(ticket_number=bystander.number, kind="event").count() == 0


def test_bulk_retriage_puts_the_selected_tickets_back_in_the_triage_queue(app: Flask, team: Team) -> None:
    for ticket, state in ((team.first, "review"), (team.second, "failed")):
        Ticket.objects(id=ticket.id).update_one(
            set__triage__state=state,
            set__triage__attempts=5,
            set__triage__generation=3,
            set__triage__last_error="quota exceeded",
            set__triage__review_reason="unsure about the category",
        )
    client, csrf = admin_session(app)
    assert app.test_client().get("/healthz").get_json()["triage_queue_depth"] == 0

    response = run_action(client, csrf, "retriage", team.first, team.second)
    assert response.status_code == 302
    assert "Queued 2 ticket(s) for triage." in client.get(LIST).get_data(as_text=True)

    for ticket in (team.first, team.second):
        triage = Ticket.objects.get(id=ticket.id).triage
        assert triage.state == "pending"
        assert triage.attempts == 0
        assert triage.generation == 4
        assert triage.last_error is None and triage.review_reason is None
    assert Ticket.objects.get(id=team.bystander.id).triage.state == "done"
    assert app.test_client().get("/healthz").get_json()["triage_queue_depth"] == 2


@pytest.mark.parametrize("action", ["reassign", "close", "retriage"])
def test_moderator_is_refused_every_bulk_action(app: Flask, team: Team, action: str) -> None:
    client = app.test_client()
    csrf = cookie_login(client, "ana@example.test")
    before = snapshot()
    response = run_action(client, csrf, action, team.first, team.second, team.bystander)
    assert response.status_code == 403
    assert "VPN drops every hour" not in response.get_data(as_text=True)
    assert snapshot() == before
    assert AuditEvent.objects.count() == 0


def test_moderator_is_refused_the_bulk_reassign_page(app: Flask, team: Team) -> None:
    client = app.test_client()
    csrf = cookie_login(client, "ana@example.test")
    ids = f"{team.first.id},{team.bystander.id}"
    page = client.get(BULK_REASSIGN, query_string={"ids": ids})
    assert page.status_code == 403
    assert "VPN drops every hour" not in page.get_data(as_text=True)
    before = snapshot()
    submit = client.post(
        BULK_REASSIGN, data={"ids": ids, "assignee": "ana@example.test", "reason": "mine now", "csrf_token": csrf}
    )
    assert submit.status_code == 403
    assert snapshot() == before
    assert AuditEvent.objects.count() == 0


def test_anonymous_is_sent_to_login(app: Flask, team: Team) -> None:
    client = app.test_client()
    before = snapshot()
    for response in (
        run_action(client, None, "close", team.first),
        client.get(BULK_REASSIGN, query_string={"ids": str(team.first.id)}),
        client.post(BULK_REASSIGN, data={"ids": str(team.first.id), "assignee": "bo@example.test", "reason": "x"}),
    ):
        assert response.status_code == 302
        assert urlsplit(response.headers["Location"]).path == "/login"
    assert snapshot() == before


def test_admin_bulk_action_without_csrf_token_is_refused(app: Flask, team: Team) -> None:
    client, _csrf = admin_session(app)
    before = snapshot()
    for response in (
        run_action(client, None, "close", team.first, team.second),
        run_action(client, "forged", "close", team.first, team.second),
        client.post(BULK_REASSIGN, data={"ids": str(team.first.id), "assignee": "bo@example.test", "reason": "forged"}),
    ):
        assert response.status_code == 403
    assert snapshot() == before
    assert AuditEvent.objects.count() == 0
