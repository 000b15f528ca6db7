"""SLA deadlines with a controlled clock: overdue, unanswered tickets go to an admin exactly once."""

from __future__ import annotations

import datetime as dt

from models import OutboundEmail, Ticket
from tests.triage_support import make_staff, make_ticket
from triage.jobs import sla_job

START = dt.datetime(2026, 3, 2, 9, 0)


def test_overdue_unanswered_ticket_is_escalated_once(db, settings):
    admin = make_staff("admin@x.test", role="admin")
    moderator = make_staff("m@x.test", skills=["payments"])
    high = make_ticket("Site down", "x", priority="high", created_at=START, assignee=moderator, status="open")
    low = make_ticket("Question", "x", priority="low", created_at=START, assignee=moderator, status="open")
    answered = make_ticket("Answered", "x", priority="high", created_at=START, first_response_at=START)

    sla_job(settings, now=START + dt.timedelta(hours=7, minutes=59))
    assert Ticket.objects(status="escalated").count() == 0
    high.reload()
    assert high.sla_due_at == START + dt.timedelta(hours=8)  # high = 8 h by default

    sla_job(settings, now=START + dt.timedelta(hours=9))
    sla_job(settings, now=START + dt.timedelta(hours=10))  # a second pass must not escalate again
    for ticket in (high, low, answered):
        ticket.reload()
    assert high.status == "escalated" and high.assignee == admin and high.sla_breached
    assert "no response within 8 h (high); overdue by 1 h 0 min" in high.escalation_reason
    assert low.status == "open" and answered.status == "new"
    assert OutboundEmail.objects(ticket_number=high.number, to=admin.email).count() == 1


def test_sla_hours_are_configurable(db, db_server, mail_server):
    from tests.conftest import make_settings

    custom = make_settings(db, mail_server, sla_hours={"low": 1.0, "medium": 1.0, "high": 1.0, "urgent": 0.5})
    make_staff("admin@x.test", role="admin")
    ticket = make_ticket("Question", "x", priority="low", created_at=START)
    sla_job(custom, now=START + dt.timedelta(hours=2))
    ticket.reload()
    assert ticket.status == "escalated" and "within 1 h (low)" in ticket.escalation_reason


def test_overdue_ticket_already_with_an_admin_stays_with_that_admin(db, settings):
    make_staff("idle-admin@x.test", role="admin")
    busy = make_staff("busy-admin@x.test", role="admin")
    for i in range(3):
        make_ticket(f"other {i}", "x", assignee=busy, status="open")
    ticket = make_ticket("Site down", "x", priority="urgent", created_at=START, assignee=busy, status="open")
    sla_job(settings, now=START + dt.timedelta(hours=3))
    ticket.reload()
    assert ticket.status == "escalated" and ticket.assignee == busy
    assert OutboundEmail.objects(ticket_number=ticket.number, to=busy.email).count() == 1


def test_sla_escalation_emails_every_active_admin_once(db, settings, mail):
    from daemon.outbox import send_due

    busy = make_staff("busy-admin@x.test", role="admin")
    make_staff("idle-admin@x.test", role="admin")
    make_staff("gone-admin@x.test", role="admin", active=False)
    for i in range(2):
        make_ticket(f"other {i}", "x", assignee=busy, status="open")
    ticket = make_ticket("Site down", "x", priority="urgent", created_at=START, status="open")
    sla_job(settings, now=START + dt.timedelta(hours=5))
    ticket.reload()
    assert ticket.status == "escalated" and ticket.assignee.email == "idle-admin@x.test"
    send_due(settings)  # the daemon's outbox job
    sent = mail.wait_for_sink(2)
    assert len(sent) == 2
    by_recipient = {m["To"]: m for m in sent}
    assert sorted(by_recipient) == ["busy-admin@x.test", "idle-admin@x.test"]  # each once; not the inactive one
    alert = by_recipient["busy-admin@x.test"].get_content()
    assert "no response within 2 h (urgent)" in alert and f"/tickets/{ticket.number}" in alert
    assert "idle-admin@x.test" in alert  # who has it now
