# ruff: noqa: F811 - pytest fixtures imported from tests.web_support
"""The moderator workspace and the requester status page, through pages and the API."""

from __future__ import annotations

import datetime as dt
import re
import threading

from itsdangerous import URLSafeTimedSerializer

from daemon.ingest import ingest
from daemon.outbox import send_due
from models import AuditEvent, Category, OutboundEmail, Skill, Ticket, TicketMessage, User, utcnow
from models.links import StatusLink
from tests.daemon_support import raw_email, reply_to
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
    assert "page 1<" in first and "Next →" in first and "Printer 0<" in first and "Refund please" not in first
    assert _counts(client, "per_page=10")["current"] == "31"
    last = client.get("/queue?per_page=10&page=4").get_data(as_text=True)
    assert "Refund please" in last and "Next →" not in last
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


# ---- the queue, the timeline and the admin's actions (issue 11) ------------------------------------------


def _queue_rows(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr class="[^"]*" data-number="(\d+)"', html)]


def _counts(client, query: str = "") -> dict:  # noqa: ANN001
    """What the queue page fetches after it is shown: each saved filter's count and the current list's."""
    response = client.get(f"/queue/counts?{query}")
    assert response.status_code == 200 and response.is_json
    return response.get_json()


def test_queue_orders_by_sla_due_then_priority_and_counts_each_saved_filter(app, db) -> None:
    now = utcnow()
    admin = make_user("admin@example.test", role="admin")
    mod = make_user("mod@example.test", skills=("vpn",))
    due = now + dt.timedelta(hours=2)
    late_low = make_ticket(
        subject="Late low", priority="low", sla_due_at=now - dt.timedelta(hours=5), sla_breached=True
    )
    soon_low = make_ticket(subject="Soon low", priority="low", sla_due_at=due, assignee=mod)
    soon_urgent = make_ticket(subject="Soon urgent", priority="urgent", sla_due_at=due, assignee=admin)
    later = make_ticket(subject="Later", sla_due_at=now + dt.timedelta(days=2), status="pending", assignee=mod)
    escalated = make_ticket(
        subject="Angry", sla_due_at=now + dt.timedelta(hours=1), status="escalated", escalated=True, assignee=admin
    )
    done = make_ticket(subject="Done already", sla_due_at=now - dt.timedelta(days=9), status="resolved")
    answered_late = make_ticket(
        subject="Answered", sla_due_at=now - dt.timedelta(hours=1), first_response_at=now, sla_breached=True
    )
    client = app.test_client()
    cookie_login(client, "admin@example.test")
    page = client.get("/queue").get_data(as_text=True)
    # soonest deadline first; the two due at the same moment: urgent before low
    assert _queue_rows(page) == [
        late_low.number,
        answered_late.number,
        escalated.number,
        soon_urgent.number,
        soon_low.number,
        later.number,
    ]
    assert re.search(rf'<tr class="overdue" data-number="{late_low.number}"', page)  # highlighted
    assert re.search(rf'<tr class="" data-number="{answered_late.number}"', page)  # answered: not overdue
    assert 'id="queue-total"' in page and 'data-count-of="waiting"' in page  # filled in from /queue/counts
    counts = _counts(client)
    assert counts["views"] == {
        "all": "6",
        "mine": "2",
        "unassigned": "2",
        "overdue": "1",
        "escalated": "1",
        "waiting": "1",
    }
    assert counts["current"] == "6" and _counts(client, "view=unassigned&priority=low")["current"] == "1"
    assert _queue_rows(client.get("/queue?view=overdue").get_data(as_text=True)) == [late_low.number]
    assert _queue_rows(client.get("/queue?view=escalated").get_data(as_text=True)) == [escalated.number]
    assert _queue_rows(client.get("/queue?view=waiting").get_data(as_text=True)) == [later.number]
    assert _queue_rows(client.get("/queue?view=mine").get_data(as_text=True)) == [escalated.number, soon_urgent.number]
    assert _queue_rows(client.get("/queue?view=unassigned&priority=low").get_data(as_text=True)) == [late_low.number]
    closed = client.get(f"/queue?status=any&q=%23{done.number}").get_data(as_text=True)  # one choice away
    assert _queue_rows(closed) == [done.number]
    assert _queue_rows(client.get(f"/queue?q=%23{done.number}").get_data(as_text=True)) == []  # open ones only
    assert _queue_rows(client.get("/queue?status=resolved").get_data(as_text=True)) == [done.number]
    assert len(_queue_rows(client.get("/queue?status=any").get_data(as_text=True))) == 7
    # a moderator's "mine" is their own
    moderator = app.test_client()
    cookie_login(moderator, "mod@example.test")
    mine = moderator.get("/queue?view=mine").get_data(as_text=True)
    assert _queue_rows(mine) == [soon_low.number, later.number] and _counts(moderator)["views"]["mine"] == "2"


def test_queue_counts_stop_at_99_plus(app, db) -> None:
    make_user("admin@example.test", role="admin")
    start = utcnow() - dt.timedelta(days=30)
    for i in range(101):
        make_ticket(subject=f"Bulk {i}", sla_due_at=start + dt.timedelta(hours=i))
    client = app.test_client()
    cookie_login(client, "admin@example.test")
    page = client.get("/queue?per_page=25").get_data(as_text=True)
    counts = _counts(client, "per_page=25")
    assert counts["views"]["all"] == "99+" and counts["views"]["unassigned"] == "99+" and counts["views"]["mine"] == "0"
    assert counts["current"] == "99+"
    assert "Next →" in page and "page 1<" in page
    assert len(_queue_rows(page)) == 25 and "Bulk 0<" in page
    last = client.get("/queue?per_page=25&page=5").get_data(as_text=True)
    assert len(_queue_rows(last)) == 1 and "Bulk 100<" in last and "Next →" not in last


def test_customer_replied_shows_after_our_reply(app, db, settings) -> None:
    moderator = make_user("mod@example.test")
    ticket = make_ticket(assignee=moderator, sla_due_at=utcnow() + dt.timedelta(hours=3))
    ticket_actions.reply(ticket, moderator, "Try again please.", settings)
    client = app.test_client()
    cookie_login(client, "mod@example.test")
    assert "replied-yes" not in client.get("/queue").get_data(as_text=True)
    Ticket.objects(id=ticket.id).update_one(
        set__last_message_at=utcnow() + dt.timedelta(seconds=5)
    )  # the daemon's bump
    assert 'class="pill replied-yes">replied' in client.get("/queue").get_data(as_text=True)


def test_a_customer_reply_takes_a_ticket_out_of_waiting_on_customer(app, db, settings) -> None:
    moderator = make_user("mod@example.test")
    due = utcnow() + dt.timedelta(hours=3)
    emails = {}
    for subject in ("Quiet", "Chatty"):
        emails[subject] = raw_email(sender=f"{subject.lower()}@example.test", subject=subject)
        number = ingest(emails[subject], settings, send_ack=False).ticket_number
        Ticket.objects(number=number).update_one(set__assignee=moderator.id, set__sla_due_at=due)
        ticket = Ticket.objects.get(number=number)
        ticket_actions.reply(ticket, moderator, "Does it work now?", settings)  # both become pending
    waiting, answered_back = (Ticket.objects.get(subject=subject) for subject in ("Quiet", "Chatty"))
    assert waiting.status == answered_back.status == "pending"
    ingest(reply_to(emails["Chatty"], body="Not yet.", sender="chatty@example.test"), settings)  # reopens it
    client = app.test_client()
    cookie_login(client, "mod@example.test")
    page = client.get("/queue?view=waiting").get_data(as_text=True)
    assert _queue_rows(page) == [waiting.number] and _counts(client, "view=waiting")["views"]["waiting"] == "1"
    everything = client.get("/queue").get_data(as_text=True)
    assert set(_queue_rows(everything)) == {waiting.number, answered_back.number}


def test_timeline_shows_every_event_with_who_did_it(app, db, settings) -> None:
    admin = make_user("admin@example.test", role="admin")
    moderator = make_user("mod@example.test", skills=("vpn",))
    ticket = make_ticket(required_skills=("vpn",), category="network", priority="high")
    Ticket.objects(id=ticket.id).update_one(
        set__triage__state="done",
        set__triage__provider="gemini",
        set__triage__completed_at=utcnow(),
        set__ack_message_id="<ack-1@example.test>",
    )
    OutboundEmail(message_id="<ack-1@example.test>", kind="ack", to=[ticket.requester_email], subject="ack").save()
    AuditEvent(
        actor="system:triage",
        action="assign",
        ticket_number=ticket.number,
        detail="assignee mod@example.test",
        reason="matched vpn; 0 open tickets",
    ).save()
    ticket.reload()
    ticket_actions.assign(ticket, admin, moderator, "vpn expert", settings)
    ticket_actions.reply(ticket, moderator, "Restart it.", settings)
    ticket_actions.add_note(ticket, moderator, "customer is on 5.1", settings)
    ticket_actions.change_status(ticket, moderator, "open", settings)
    ticket_actions.escalate(ticket, moderator, "legal threat", settings)
    TicketMessage(
        ticket=ticket,
        ticket_number=ticket.number,
        kind="inbound",
        message_id="<ooo@customer.example>",
        from_address="customer@example.test",
        from_name="Carla Customer",
        auto_submitted=True,
        text="I am out of office",
    ).save()
    client = app.test_client()
    cookie_login(client, "admin@example.test")
    page = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    timeline = page[page.index('id="timeline"') : page.index("</ol>")]
    for expected in (
        "created by an email from customer@example.test",
        "acknowledgement queued",
        "triaged by gemini: category network, priority high, skills vpn",
        "system: triage",
        "assigned: assignee mod@example.test",
        "why: matched vpn; 0 open tickets",
        "assigned nobody -&gt; mod@example.test by admin@example.test",
        "why: vpn expert",
        "reply sent to customer@example.test",
        "status open -&gt; pending (reply sent) by mod@example.test",
        "internal note",
        "status pending -&gt; open by mod@example.test",
        "escalated by mod@example.test: legal threat",
        "email from customer@example.test",
        "auto-reply",
    ):
        assert expected in timeline, expected
    order = [timeline.index(s) for s in ("created by", "triaged by", "reply sent", "escalated by", "auto-reply")]
    assert order == sorted(order)
    # the thread names the sender's address next to the display name, and labels the auto-reply
    assert 'Carla Customer <span class="sender">&lt;customer@example.test&gt;</span>' in page
    assert '<span class="pill auto-reply">auto-reply</span>' in page


def test_escalation_by_a_moderator_goes_to_an_admin_and_emails_every_admin(app, db, settings) -> None:
    first = make_user("boss@example.test", role="admin")
    second = make_user("deputy@example.test", role="admin")
    gone = make_user("gone@example.test", role="admin")
    User.objects(id=gone.id).update_one(set__active=False)
    moderator = make_user("mod@example.test", skills=("vpn",))
    ticket = make_ticket(assignee=moderator, required_skills=("vpn",))
    client = app.test_client()
    csrf = cookie_login(client, "mod@example.test")
    response = client.post(
        f"/tickets/{ticket.number}/escalate", data={"reason": "refund over limit", "csrf_token": csrf}
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("/queue")  # no longer theirs
    ticket.reload()
    assert ticket.status == "escalated" and ticket.escalated and ticket.assignee in (first, second)
    alerts = OutboundEmail.objects(kind="notification", ticket_number=ticket.number)
    assert sorted(a.to[0] for a in alerts) == ["boss@example.test", "deputy@example.test"]
    for alert in alerts:
        assert "refund over limit" in alert.text and f"http://127.0.0.1:5000/tickets/{ticket.number}" in alert.text
        assert "escalated by mod@example.test" in alert.text


def test_admin_reassigns_deescalates_and_skills_that_fit_come_first(app, db, settings) -> None:
    make_user("admin@example.test", role="admin")
    make_user("aaron@example.test", skills=("billing",))
    fit = make_user("zoe@example.test", skills=("vpn", "sso"))
    ticket = make_ticket(required_skills=("vpn", "sso"), status="escalated", escalated=True)
    client = app.test_client()
    csrf = cookie_login(client, "admin@example.test")
    page = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    options = re.findall(r'<option value="([^"]+@example.test)"', page)
    assert options[0] == "zoe@example.test" and set(options) == {
        "zoe@example.test",
        "aaron@example.test",
        "admin@example.test",
    }
    moved = client.post(
        f"/tickets/{ticket.number}/assign", data={"assignee": fit.email, "reason": "vpn and sso", "csrf_token": csrf}
    )
    assert moved.status_code == 302
    ticket.reload()
    assert ticket.assignee == fit and not ticket.escalated and ticket.status == "open"  # assigning settles it
    Ticket.objects(id=ticket.id).update_one(set__escalated=True, set__status="escalated")
    settled = client.post(
        f"/tickets/{ticket.number}/deescalate", data={"reason": "refund approved", "csrf_token": csrf}
    )
    assert settled.status_code == 302
    ticket.reload()
    assert not ticket.escalated and ticket.status == "open" and ticket.assignee == fit
    assert AuditEvent.objects(action="deescalate", ticket_number=ticket.number).get().reason == "refund approved"
    bad = client.post(f"/tickets/{ticket.number}/assign", data={"assignee": "nobody@x.test", "csrf_token": csrf})
    assert bad.status_code == 400
    moderator = app.test_client()
    mod_csrf = cookie_login(moderator, "zoe@example.test")
    refused = moderator.post(
        f"/tickets/{ticket.number}/assign", data={"assignee": "zoe@example.test", "csrf_token": mod_csrf}
    )
    assert refused.status_code == 403


def test_moderator_hands_a_ticket_back_and_routing_assigns_it_again(app, db, settings) -> None:
    from triage.jobs import triage_job

    for name in ("vpn",):
        Skill(name=name).save()
    make_user("admin@example.test", role="admin")
    other = make_user("other@example.test", skills=("vpn",))
    holder = make_user("holder@example.test", skills=("vpn",))
    ticket = make_ticket(required_skills=("vpn",))
    ticket_actions.correct_triage(ticket, holder, settings, required_skills=["vpn"])
    Ticket.objects(id=ticket.id).update_one(set__triage__human_fields=["required_skills"])
    ticket.reload()
    ticket_actions.assign(ticket, holder, holder, "took it", settings)
    client = app.test_client()
    csrf = cookie_login(client, "holder@example.test")
    response = client.post(f"/tickets/{ticket.number}/handback", data={"csrf_token": csrf})
    assert response.status_code == 302
    ticket.reload()
    assert ticket.assignee is None and ticket.triage.state == "pending"
    triage_job(settings)  # the daemon's job: triage again (skills stay as a human set them), then route
    ticket.reload()
    assert ticket.assignee == other  # holder was assigned most recently
    assert (
        AuditEvent.objects(action="assign", ticket_number=ticket.number, reason="handed back to routing").count() == 1
    )


def test_hand_back_by_the_only_fitting_moderator_escalates_to_an_admin(app, db, settings) -> None:
    from triage.jobs import triage_job

    Skill(name="vpn").save()
    admin = make_user("admin@example.test", role="admin")
    holder = make_user("holder@example.test", skills=("vpn",))
    make_user("printers@example.test", skills=("printers",))
    ticket = make_ticket(required_skills=("vpn",))
    Ticket.objects(id=ticket.id).update_one(set__triage__human_fields=["required_skills"])
    ticket.reload()
    ticket_actions.assign(ticket, holder, holder, "took it", settings)
    client = app.test_client()
    csrf = cookie_login(client, "holder@example.test")
    assert client.post(f"/tickets/{ticket.number}/handback", data={"csrf_token": csrf}).status_code == 302
    triage_job(settings)  # before: routing gave it straight back to holder, still the best fit
    ticket.reload()
    assert ticket.assignee == admin and ticket.status == "escalated"
    assert ticket.escalation_reason == "no other active moderator covers vpn"
    assert OutboundEmail.objects(ticket_number=ticket.number, to="admin@example.test", kind="notification").count() == 1
