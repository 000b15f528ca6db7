# ruff: noqa: F811 - pytest fixtures imported from tests.web_support
"""Flask-Admin bulk actions on tickets (reassign, close, re-triage) through the real admin endpoints, with
a cookie session as a browser has one: what changes, what is recorded, and who is refused."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
from bson import ObjectId
from flask import Flask
from flask.testing import FlaskClient

from daemon.outbox import send_due, send_one
from models import AuditEvent, OutboundEmail, QuarantinedEmail, Ticket, TicketMessage, TriageState, User, queue_email
from tests.conftest import make_settings
from tests.support import MailStack
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
    return run_action_on_ids(client, csrf, action, [str(t.id) for t in tickets])


def run_action_on_ids(client: FlaskClient, csrf: str | None, action: str, ids: list[str], *, view: str = LIST):  # noqa: ANN201
    data: dict[str, object] = {"action": action, "rowid": ids, "url": view}
    if csrf is not None:
        data["csrf_token"] = csrf
    return client.post(f"{view}action/", data=data)


MISSING = str(ObjectId())  # well-formed, but no such ticket
MALFORMED = "not-an-object-id"


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


def test_bulk_close_counts_and_audits_only_the_tickets_it_closed(app: Flask, team: Team) -> None:
    """Regression: bulk close wrote no audit entry and counted every submitted id."""
    Ticket.objects(id=team.second.id).update_one(set__status="closed")
    client, csrf = admin_session(app)
    ids = [str(team.first.id), str(team.second.id), MISSING, MALFORMED]
    response = run_action_on_ids(client, csrf, "close", ids)
    assert response.status_code == 302
    assert "Closed 1 ticket(s)." in client.get(LIST).get_data(as_text=True)
    assert Ticket.objects.get(id=team.first.id).status == "closed"
    [event] = AuditEvent.objects(action="close")
    assert (event.actor, event.target, event.ticket_number) == (
        "boss@example.test",
        f"ticket:{team.first.number}",
        team.first.number,
    )
    assert event.detail == "open -> closed"
    # closing again changes nothing, and says so
    run_action(client, csrf, "close", team.first)
    assert "Closed 0 ticket(s)." in client.get(LIST).get_data(as_text=True)
    assert AuditEvent.objects(action="close").count() == 1


def test_bulk_retriage_audits_who_asked_and_counts_only_tickets_it_requeued(app: Flask, team: Team) -> None:
    """Regression: bulk re-triage left no trace of who asked and counted every submitted id."""
    Ticket.objects(id=team.first.id).update_one(set__triage__state="review")
    Ticket.objects(id=team.second.id).update_one(set__triage__state="pending", set__triage__attempts=0)
    client, csrf = admin_session(app)
    ids = [str(team.first.id), str(team.second.id), MISSING, MALFORMED]
    response = run_action_on_ids(client, csrf, "retriage", ids)
    assert response.status_code == 302
    assert "Queued 1 ticket(s) for triage." in client.get(LIST).get_data(as_text=True)
    first, second = Ticket.objects.get(id=team.first.id), Ticket.objects.get(id=team.second.id)
    assert (first.triage.state, first.triage.generation) == ("pending", 1)
    assert second.triage.generation == 0  # already waiting for its first attempt: left as it was
    [event] = AuditEvent.objects(action="retriage")
    assert (event.actor, event.target, event.ticket_number) == (
        "boss@example.test",
        f"ticket:{first.number}",
        first.number,
    )
    assert event.detail == "triage review -> pending"


def test_bulk_reassign_keeps_the_valid_ids_when_one_is_malformed(app: Flask, team: Team) -> None:
    """Regression: one malformed id in the selection dropped the whole selection."""
    client, csrf = admin_session(app)
    ids = f"{team.first.id},{MALFORMED},{team.second.id},{MISSING}"
    form = client.get(BULK_REASSIGN, query_string={"ids": ids})
    assert form.status_code == 200
    text = html.unescape(form.get_data(as_text=True))
    assert "Reassign 2 ticket(s)" in text and "VPN drops every hour" in text and "Cannot reach the intranet" in text
    done = client.post(
        BULK_REASSIGN, data={"ids": ids, "assignee": "bo@example.test", "reason": "ana is away", "csrf_token": csrf}
    )
    assert done.status_code == 302
    assert "Reassigned 2 ticket(s) to bo@example.test." in client.get(LIST).get_data(as_text=True)
    assert {t.assignee.email for t in Ticket.objects(id__in=[team.first.id, team.second.id])} == {"bo@example.test"}
    assert AuditEvent.objects(action="assign").count() == 2


def test_approve_counts_only_tickets_still_waiting_for_review(app: Flask, team: Team) -> None:
    Ticket.objects(id=team.first.id).update_one(set__triage__state="review")
    Ticket.objects(id=team.second.id).update_one(set__triage__state="pending")  # re-queued since the page loaded
    client, csrf = admin_session(app)
    ids = [str(team.first.id), str(team.second.id), MISSING, MALFORMED]
    response = run_action_on_ids(client, csrf, "approve", ids, view="/admin/triage_review/")
    assert response.status_code == 302
    assert "Approved 1 ticket(s)." in client.get("/admin/triage_review/").get_data(as_text=True)
    assert Ticket.objects.get(id=team.first.id).triage.state == "done"
    assert Ticket.objects.get(id=team.second.id).triage.state == "pending"


def test_outbox_retry_sends_the_failed_email_on_the_next_outbox_pass(
    app: Flask, team: Team, db: str, settings, mail: MailStack
) -> None:
    """Regression: after the admin's "Retry" the outbox job skipped the email (its claim id was taken)."""
    email = queue_email(kind="reply", to=["ann@example.test"], subject="Re: VPN", text="Fixed.", domain="example.test")
    unreachable = make_settings(db, mail, mail_port=1, outbox_max_attempts=1)
    assert send_one(email.id, unreachable) is False and email.reload().state == "failed"

    client, _ = admin_session(app)
    page = client.get("/admin/outbox/").get_data(as_text=True)
    match = ACTION_FORM_CSRF.search(page)
    assert match, "the outbox list has no action form"
    response = run_action_on_ids(client, match.group(1), "retry", [str(email.id), MALFORMED], view="/admin/outbox/")
    assert response.status_code == 302
    assert "Queued 1 failed email(s) for another attempt." in client.get("/admin/outbox/").get_data(as_text=True)
    email.reload()
    assert (email.state, email.attempts, email.last_error) == ("queued", 0, None)

    assert send_due(settings) == 1
    [sent] = mail.wait_for_sink(1)
    assert sent["Message-ID"] == email.message_id
    assert OutboundEmail.objects.get(id=email.id).state == "sent"


def test_reingest_only_asks_the_daemon_and_search_box_takes_words_numbers_and_addresses(app: Flask, team: Team) -> None:
    """The panel flags quarantined emails for the daemon (it never ingests mail itself)."""
    held = QuarantinedEmail(reason="unparsable", sender="x@example.test", subject="???").save()
    tickets_before = Ticket.objects.count()
    client, _ = admin_session(app)
    page = client.get("/admin/quarantine/").get_data(as_text=True)
    match = ACTION_FORM_CSRF.search(page)
    assert match, "the quarantine list has no action form"
    response = run_action_on_ids(
        client, match.group(1), "reingest", [str(held.id), MALFORMED], view="/admin/quarantine/"
    )
    assert response.status_code == 302
    assert "Queued 1 email(s) for re-ingestion." in client.get("/admin/quarantine/").get_data(as_text=True)
    held.reload()
    assert held.reingest_requested_at is not None and held.reingested_at is None
    assert Ticket.objects.count() == tickets_before

    def listed(search: str) -> set[int]:
        body = client.get(LIST, query_string={"search": search}).get_data(as_text=True)
        return {int(n) for n in re.findall(r'href="/tickets/(\d+)"', body)}

    subject_word = team.first.subject.split()[0]
    assert team.first.number in listed(subject_word.upper())
    assert listed(f"#{team.second.number}") == {team.second.number}
    assert listed(".*") == set()  # words, never a pattern
