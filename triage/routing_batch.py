"""Routing a batch of freshly triaged tickets with a fixed number of database round trips.

One RoutingContext (skills, categories, staff, and one aggregation of open loads) decides every ticket of the
batch, counting each assignment in memory; then one `bulk_write` assigns (each update conditional on the ticket
still having no assignee), one `insert_many` writes the audit entries, one `bulk_write` stamps the assignees'
last assignment, and one `insert_many` queues the notifications (models.outbox.queue_emails).
"""

from __future__ import annotations

import logging

from pymongo import UpdateOne

from config import Settings
from models import AuditEvent, Ticket, User, utcnow
from models.outbox import queue_emails
from triage.routing import RoutingContext, RoutingDecision, audit_fields, notification_email

logger = logging.getLogger(__name__)


def route_batch(tickets: list[Ticket], actor: str, settings: Settings) -> list[tuple[Ticket, RoutingDecision]]:
    """Assign or escalate each of `tickets` (none may have an assignee yet); what was written."""
    if not tickets:
        return []
    context = RoutingContext.read()
    now = utcnow()
    planned: list[tuple[Ticket, RoutingDecision]] = []
    for ticket in tickets:
        decision = context.decide(ticket)
        if decision.assignee is not None:
            context.count_assignment(decision.assignee, now)
        planned.append((ticket, decision))
    collection = Ticket._get_collection()
    wanted = {t.id: _assignment(d, now) for t, d in planned}
    operations = [UpdateOne({"_id": ticket_id, "assignee": None}, {"$set": f}) for ticket_id, f in wanted.items()]
    if collection.bulk_write(operations, ordered=False).matched_count < len(operations):
        rows = collection.find({"_id": {"$in": list(wanted)}}, {"assignee": 1, "routing_reason": 1, "updated_at": 1})
        ours = {  # someone assigned some of them meanwhile: keep only ours
            row["_id"]
            for row in rows
            if (row.get("assignee"), row.get("routing_reason"), row.get("updated_at"))
            == (wanted[row["_id"]]["assignee"], wanted[row["_id"]]["routing_reason"], now)
        }
        planned = [(t, d) for t, d in planned if t.id in ours]
    for ticket, decision in planned:  # the in-memory copies, as the database now has them
        ticket.assignee, ticket.routing_reason = decision.assignee, decision.reason[:500]
        ticket.assigned_at, ticket.updated_at = (now if decision.assignee else None), now
        if decision.escalated:
            ticket.status, ticket.escalated, ticket.escalated_at = "escalated", True, now
            ticket.escalation_reason = decision.escalation_reason
    _record(planned, actor, settings, now)
    logger.info("routed %s tickets (%s escalated)", len(planned), sum(d.escalated for _, d in planned))
    return planned


def _assignment(decision: RoutingDecision, now) -> dict:  # noqa: ANN001 - a datetime
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


def _record(planned: list[tuple[Ticket, RoutingDecision]], actor: str, settings: Settings, now) -> None:  # noqa: ANN001
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
