"""Routing a batch of freshly triaged tickets with a fixed number of database round trips.

One RoutingContext (skills, categories, staff, and each candidate's open load, counted once) decides every ticket of the
batch, counting each assignment in memory (`plan`). The assignment is written with the triage result, in the
same conditional update (triage/batch.py); then `record` writes the audit entries (one `insert_many`), stamps
the assignees' last assignment (one `bulk_write`) and queues the notifications (one `insert_many`, via
models.outbox.queue_emails).
"""

from __future__ import annotations

import datetime as dt

from pymongo import UpdateOne

from config import Settings
from models import AuditEvent, Ticket, User
from models.outbox import queue_emails
from triage.routing import RoutingContext, RoutingDecision, audit_fields, notification_email

Planned = list[tuple[Ticket, RoutingDecision]]


def plan(tickets: list[Ticket], now: dt.datetime) -> Planned:
    """A decision for each of `tickets` (triaged, in memory, without an assignee) from one routing context."""
    if not tickets:
        return []
    context = RoutingContext.read()
    planned = []
    for ticket in tickets:
        passed_over = handed_back_by(ticket)
        decision = context.decide(ticket, exclude=passed_over)
        if decision.assignee is None and passed_over:  # an admin handed it back and no one else is active
            decision = context.decide(ticket)
        if decision.assignee is not None:
            context.count_assignment(decision.assignee, now)
        planned.append((ticket, decision))
    return planned


def handed_back_by(ticket: Ticket) -> set[str] | None:
    """Who routing passes over for `ticket`: the staff member who handed it back, if anyone did."""
    return {str(ticket.handed_back_by)} if ticket.handed_back_by else None


def assignment(decision: RoutingDecision, now: dt.datetime) -> dict:
    """The ticket fields a decision sets (status and reason too when it escalates)."""
    fields = {
        "assignee": decision.assignee.id if decision.assignee else None,
        "routing_reason": decision.reason[:500],
        "assigned_at": now if decision.assignee else None,
        "updated_at": now,
    }
    if decision.escalated:
        fields.update(
            status="escalated", escalated=True, escalation_reason=decision.escalation_reason, escalated_at=now
        )
    return fields


def apply_in_memory(ticket: Ticket, decision: RoutingDecision, now: dt.datetime) -> None:
    """Make the in-memory `ticket` what the database now holds (the notifications are written from it)."""
    ticket.assignee, ticket.routing_reason = decision.assignee, decision.reason[:500]
    ticket.assigned_at, ticket.updated_at = (now if decision.assignee else None), now
    if decision.escalated:
        ticket.status, ticket.escalated, ticket.escalated_at = "escalated", True, now
        ticket.escalation_reason = decision.escalation_reason


def record(planned: Planned, actor: str, settings: Settings, now: dt.datetime) -> None:
    """Audit entries, the assignees' last assignment, and their notifications, for assignments written."""
    if not planned:
        return
    audit = [AuditEvent(actor=actor, at=now, **audit_fields(t, d)).to_mongo().to_dict() for t, d in planned]
    AuditEvent._get_collection().insert_many(audit, ordered=False)
    assignees = {d.assignee.id for _, d in planned if d.assignee is not None}
    if assignees:
        User._get_collection().bulk_write(
            [UpdateOne({"_id": user_id}, {"$set": {"last_assigned_at": now}}) for user_id in assignees], ordered=False
        )
    queue_emails([notification_email(t, d, settings) for t, d in planned if d.assignee is not None])
