# ruff: noqa: F811 - pytest fixtures imported from tests.web_support
"""The moderator workspace and the requester status page, through pages and the API."""

from __future__ import annotations

import datetime as dt
import threading

from itsdangerous import URLSafeTimedSerializer

from daemon.outbox import send_due
from models import AuditEvent, Category, OutboundEmail, Skill, Ticket, TicketMessage, utcnow
from models.links import StatusLink
from tests.web_support import app, bearer, cookie_login, make_ticket, make_user, status_link_token  # noqa: F401
from webadmin import ticket_actions


def test_reply_is_queued_then_emailed_threaded_by_the_outbox_job(app, db, mail, settings) -> None:
    moderator = make_user("mod@example.test", skills=("vpn",))
    ticket = make_ticket(assignee=moderator)
    response = app.test_client().post(
        f"/api/tickets/{ticket.number}/replies", headers=bearer(app, moderator), json={"text": "Please restart it."}
    )
    assert response.status_code == 201, response.get_json()
    assert OutboundEmail.objects.get().state == "queued"  # the web app never talks SMTP itself
    assert mail.sink_messages() == []
    assert send_due(settings) == 1  # the daemon's outbox job
    [sent] = mail.wait_for_sink(1)
    assert sent["To"] == "customer@example.test"
    assert sent["Subject"] == f"Re: [#{ticket.number}] VPN drops every hour"
    assert sent["In-Reply-To"] == ticket.source_message_id
    assert ticket.source_message_id in sent["References"]
    assert "Please restart it." in sent.get_content()
    assert "/status/" in sent.get_content()
    stored = TicketMessage.objects(ticket_number=ticket.number, kind="outbound").get()
    assert stored.message_id == sent["Message-ID"] == OutboundEmail.objects.get().message_id
    ticket.reload()
    assert ticket.first_response_at is not None
    assert ticket.status == "pending"


def test_note_stays_internal(app, db, mail, settings) -> None:
    moderator = make_user("mod@example.test")
    ticket = make_ticket(assignee=moderator)
    client = app.test_client()
    csrf = cookie_login(client, "mod@example.test")
    response = client.post(f"/tickets/{ticket.number}/note", data={"text": "customer is grumpy", "csrf_token": csrf})
    assert response.status_code == 302
    assert "customer is grumpy" in client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert OutboundEmail.objects.count() == 0
    status_page = client.get(f"/status/{status_link_token(settings, ticket)}").get_data(as_text=True)
    assert "customer is grumpy" not in status_page
    assert "VPN drops every hour" in status_page


def test_status_escalate_and_triage_correction_are_recorded(app, db, settings) -> None:
    for name in ("vpn", "networking"):
        Skill(name=name).save()
    Category(name="network").save()
    moderator = make_user("mod@example.test", skills=("vpn",))
    ticket = make_ticket(assignee=moderator, required_skills=("vpn",))
    client = app.test_client()
    headers = bearer(app, moderator)
    escalated = client.post(f"/api/tickets/{ticket.number}/escalate", headers=headers, json={"reason": "legal threat"})
    assert escalated.status_code == 200
    assert escalated.get_json()["status"] == "escalated"
    event = AuditEvent.objects(action="escalate").get()
    assert (event.actor, event.ticket_number, event.reason) == ("mod@example.test", ticket.number, "legal threat")
    csrf = cookie_login(client, "mod@example.test")
    form = {"category": "network", "priority": "high", "required_skills": ["vpn", "networking"], "csrf_token": csrf}
    assert client.post(f"/tickets/{ticket.number}/triage", data=form).status_code == 302
    ticket.reload()
    assert (ticket.category, ticket.priority, ticket.required_skills) == ("network", "high", ["vpn", "networking"])
    assert set(ticket.triage.human_fields) == {"category", "priority", "required_skills"}
    closed = client.post(f"/tickets/{ticket.number}/status", data={"status": "resolved", "csrf_token": csrf})
    assert closed.status_code == 302
    ticket.reload()
    assert ticket.status == "resolved" and ticket.resolved_at is not None and not ticket.escalated


def test_bad_input_gets_a_clear_4xx(app, db) -> None:
    admin = make_user("admin@example.test", role="admin")
    ticket = make_ticket()
    client = app.test_client()
    headers = bearer(app, admin)
    bad_status = client.post(f"/api/tickets/{ticket.number}/status", headers=headers, json={"status": "bogus"})
    assert bad_status.status_code == 422
    assert "status" in bad_status.get_json()["errors"]["json"]
    blank = client.post(f"/api/tickets/{ticket.number}/notes", headers=headers, json={"text": "   "})
    assert blank.status_code == 422
    not_json = client.post(
        f"/api/tickets/{ticket.number}/notes", headers=headers, data="{oops", content_type="application/json"
    )
    assert not_json.status_code in (400, 422) and not_json.is_json
    unknown = client.post(f"/api/tickets/{ticket.number}/assign", headers=headers, json={"assignee_email": "x@y.z"})
    assert unknown.status_code == 422
    assert client.get("/api/tickets?per_page=1000", headers=headers).status_code == 422
    assert client.get("/api/tickets?status=nope", headers=headers).status_code == 422
    assert client.patch("/api/users/not-an-id", headers=headers, json={"name": "x"}).status_code == 404
    csrf = cookie_login(client, "admin@example.test")
    page = client.post(f"/tickets/{ticket.number}/status", data={"status": "bogus", "csrf_token": csrf})
    assert page.status_code == 400
    assert "status must be one of" in page.get_data(as_text=True)


def test_queue_filters_search_and_pagination(app, db) -> None:
    admin = make_user("admin@example.test", role="admin")
    for i in range(30):
        make_ticket(subject=f"Printer {i}", priority="high" if i % 3 == 0 else "low")
    make_ticket(subject="Refund please", requester="rich@example.test")
    client = app.test_client()
    cookie_login(client, "admin@example.test")
    first = client.get("/queue?per_page=10").get_data(as_text=True)
    assert "page 1 of 4" in first and "Printer 0<" in first and "Refund please" not in first
    assert "Refund please" in client.get("/queue?per_page=10&page=4").get_data(as_text=True)
    found = client.get("/queue?q=RICH@example.test").get_data(as_text=True)  # a requester's whole address
    assert "Refund please" in found and "Printer" not in found
    high = client.get("/api/tickets?priority=high&per_page=100", headers=bearer(app, admin)).get_json()
    assert high["total"] == 10 and {t["priority"] for t in high["items"]} == {"high"}
    regex = client.get("/api/tickets?q=.*", headers=bearer(app, admin)).get_json()
    assert regex["total"] == 0  # the search is words, never a pattern


def test_two_moderators_taking_one_ticket_only_one_wins(app, db, settings) -> None:
    first, second = make_user("a@example.test", skills=("vpn",)), make_user("b@example.test", skills=("vpn",))
    ticket = make_ticket(required_skills=("vpn",))
    results: dict[str, bool] = {}
    barrier = threading.Barrier(2)

    def take(user) -> None:  # noqa: ANN001
        copy = Ticket.objects.get(id=ticket.id)
        barrier.wait()
        results[user.email] = ticket_actions.take(copy, user, settings)

    threads = [threading.Thread(target=take, args=(u,)) for u in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results.values()) == [False, True]
    winner = next(email for email, won in results.items() if won)
    assert Ticket.objects.get(id=ticket.id).assignee.email == winner
    assert AuditEvent.objects(action="assign").count() == 1


def test_status_links_cannot_be_forged_or_reused_for_other_tickets(app, db, settings) -> None:
    ticket = make_ticket()
    other = make_ticket(subject="Someone else's problem", requester="else@example.test")
    client = app.test_client()
    assert client.get(f"/status/{status_link_token(settings, ticket)}").status_code == 200
    # The former signed links (ticket number and address in base64) are no longer accepted.
    serializer = URLSafeTimedSerializer(settings.secret_key, salt="ticket-status-link")
    old = serializer.dumps({"t": other.number, "e": "else@example.test"})
    response = client.get(f"/status/{old}")
    assert response.status_code == 404
    assert "Someone else" not in response.get_data(as_text=True)
    assert client.get(f"/status/{status_link_token(settings, ticket)[:-1]}x").status_code == 404


def test_expired_status_link_is_gone(app, db, settings) -> None:
    ticket = make_ticket()
    token = status_link_token(settings, ticket)
    StatusLink.objects(ticket_number=ticket.number).update(set__expires_at=utcnow() - dt.timedelta(seconds=1))
    response = app.test_client().get(f"/status/{token}")
    assert response.status_code == 410
    assert "expired" in response.get_data(as_text=True)


def test_email_html_is_sanitised_on_the_ticket_page(app, db) -> None:
    moderator = make_user("mod@example.test")
    hostile = '<p>hi</p><script>alert(1)</script><img src=x onerror="alert(2)"><a href="javascript:alert(3)">x</a>'
    ticket = make_ticket(assignee=moderator, html=hostile)
    client = app.test_client()
    cookie_login(client, "mod@example.test")
    response = client.get(f"/tickets/{ticket.number}")
    page = response.get_data(as_text=True)
    assert "<p>hi</p>" in page
    assert "<script>alert" not in page and "onerror" not in page and "javascript:" not in page
    assert "script-src 'none'" in response.headers["Content-Security-Policy"]
