"""Routing tables: skills coverage, overlap, workload, recency, escalation, rerouting."""

from __future__ import annotations

import datetime as dt

import pytest

from models import AuditEvent, OutboundEmail, Skill, User
from tests.triage_support import make_staff, make_ticket
from triage.routing import reroute_open_tickets_of, route_ticket
from triage.taxonomy import ensure_default_taxonomy

# (moderators as (email, skills, open tickets, minutes since last assignment or None), required skills,
#  category, expected assignee or "admin", expected reason fragment)
TABLE = [
    (
        [("a@x.test", ["payments"], 0, None), ("b@x.test", ["networking"], 0, None)],
        ["payments"],
        "billing",
        "a@x.test",
        "matched payments; 0 open tickets",
    ),
    (
        [("a@x.test", ["payments"], 0, None), ("b@x.test", ["PAYMENTS", "Logistics"], 3, None)],
        ["Payments"],
        "shipping",
        "b@x.test",
        "matched logistics, payments; 3 open tickets",
    ),  # case-insensitive; category's skill beats load
    (
        [("a@x.test", ["payments"], 2, None), ("b@x.test", ["payments"], 1, None)],
        ["payments"],
        "general",
        "b@x.test",
        "1 open ticket",
    ),
    (
        [("a@x.test", ["payments"], 1, 5), ("b@x.test", ["payments"], 1, 60)],
        ["payments"],
        "general",
        "b@x.test",
        "1 open ticket",
    ),  # equal load: least recently assigned wins
    (
        [("a@x.test", ["payments"], 0, None)],
        ["payments", "sso"],
        "billing",
        "admin",
        "no active moderator covers payments, sso",
    ),
    ([("a@x.test", ["networking"], 4, None)], [], "general", "a@x.test", "no specific skills required; 4 open"),
]


@pytest.mark.parametrize("moderators,required,category,expected,reason", TABLE)
def test_routing_table(db, settings, moderators, required, category, expected, reason):
    ensure_default_taxonomy()
    admin = make_staff("admin@x.test", role="admin")
    now = dt.datetime(2026, 1, 1, 12, 0)
    for email, skills, open_count, minutes in moderators:
        user = make_staff(email, skills=skills)
        if minutes is not None:
            User.objects(id=user.id).update(set__last_assigned_at=now - dt.timedelta(minutes=minutes))
        for i in range(open_count):
            make_ticket(f"old {i}", "x", assignee=user, status="open")
    ticket = make_ticket("New one", "text", required_skills=required, category=category)
    decision = route_ticket(ticket, settings=settings)
    ticket.reload()
    want = admin if expected == "admin" else User.by_email(expected)
    assert ticket.assignee == want and decision.assignee == want
    assert reason in ticket.routing_reason
    assert (ticket.status == "escalated") == (expected == "admin") == decision.escalated
    assert OutboundEmail.objects(ticket_number=ticket.number, to=want.email).count() == 1
    assert AuditEvent.objects(ticket_number=ticket.number).count() == 1


def test_inactive_moderator_and_inactive_skill_are_ignored(db, settings):
    ensure_default_taxonomy()
    make_staff("gone@x.test", skills=["payments"], active=False)
    Skill.objects(name="sso").update(set__active=False)
    active = make_staff("here@x.test", skills=["networking"])
    ticket = make_ticket("x", "y", required_skills=["sso"])  # sso is no longer in the vocabulary
    route_ticket(ticket, settings=settings)
    ticket.reload()
    assert ticket.assignee == active


def test_assignment_email_carries_summary_notes_and_link(db, settings):
    ensure_default_taxonomy()
    moderator = make_staff("m@x.test", skills=["payments"])
    ticket = make_ticket(
        "Refund", "x", required_skills=["payments"], summary="Wants a refund.", helpful_notes="Check the March invoice."
    )
    route_ticket(ticket, settings=settings)
    mail = OutboundEmail.objects(ticket_number=ticket.number).get()
    assert "Wants a refund." in mail.text and "Check the March invoice." in mail.text
    assert f"{settings.app_url}/tickets/{ticket.number}" in mail.text and mail.to == [moderator.email]
    assert mail.message_id.endswith("@example.test>")
    assert User.objects(id=moderator.id).get().last_assigned_at is not None


def test_deactivating_a_moderator_reroutes_open_tickets(db, settings):
    ensure_default_taxonomy()
    leaving = make_staff("leaving@x.test", skills=["payments"])
    staying = make_staff("staying@x.test", skills=["payments"])
    open_ticket = make_ticket("a", "b", assignee=leaving, status="open", required_skills=["payments"])
    closed_ticket = make_ticket("c", "d", assignee=leaving, status="closed", required_skills=["payments"])
    User.objects(id=leaving.id).update(set__active=False)
    assert reroute_open_tickets_of(leaving, "admin@x.test", settings) == 1
    open_ticket.reload()
    closed_ticket.reload()
    assert open_ticket.assignee == staying and closed_ticket.assignee == leaving
    assert AuditEvent.objects(ticket_number=open_ticket.number, actor="admin@x.test").count() == 1


def test_leaving_admin_hands_escalated_tickets_to_another_admin(db, settings):
    ensure_default_taxonomy()
    leaving = make_staff("boss1@x.test", role="admin")
    other = make_staff("boss2@x.test", role="admin")
    ticket = make_ticket("a", "b", assignee=leaving, status="escalated", required_skills=["sso"])
    assert reroute_open_tickets_of(leaving, "boss2@x.test", settings) == 1  # still active at this point
    ticket.reload()
    assert ticket.assignee == other and ticket.status == "escalated"


def test_routing_passes_over_the_one_who_handed_a_ticket_back(db, settings):
    from triage.routing_batch import plan

    ensure_default_taxonomy()
    admin = make_staff("admin@x.test", role="admin")
    holder = make_staff("holder@x.test", skills=["payments"])  # the best fit: no open tickets
    other = make_staff("other@x.test", skills=["payments"])
    make_ticket("busy", "x", assignee=other, status="open")
    now = dt.datetime(2026, 1, 1, 12, 0)
    ticket = make_ticket("Refund", "x", required_skills=["payments"], handed_back_by=holder.id)
    fresh = make_ticket("Refund too", "x", required_skills=["payments"])
    [(_, handed_back), (_, new)] = plan([ticket, fresh], now)
    assert handed_back.assignee == other and not handed_back.escalated
    assert new.assignee == holder  # only the ticket they handed back passes them over

    User.objects(id=other.id).update(set__active=False)
    [(_, alone)] = plan([ticket], now)  # no one else covers payments: escalated to an admin
    assert alone.assignee == admin and alone.escalated
    assert alone.escalation_reason == "no other active moderator covers payments"


def test_an_admin_handing_back_with_no_one_else_active_gets_it_again(db, settings):
    from triage.routing_batch import plan

    ensure_default_taxonomy()
    admin = make_staff("admin@x.test", role="admin")
    ticket = make_ticket("Odd one", "x", required_skills=["sso"], handed_back_by=admin.id)
    [(_, decision)] = plan([ticket], dt.datetime(2026, 1, 1, 12, 0))
    assert decision.assignee == admin and decision.escalated  # better than nobody
    second = make_staff("admin2@x.test", role="admin")
    [(_, decision)] = plan([ticket], dt.datetime(2026, 1, 1, 12, 0))
    assert decision.assignee == second
