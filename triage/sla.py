"""Response deadlines per priority; an overdue, unanswered ticket goes to an admin."""

from __future__ import annotations

import datetime as dt
import logging

from pymongo.errors import DuplicateKeyError

from config import Settings
from models import Ticket, ticket_index, utcnow
from models.tickets import OPEN_STATUSES, sla_due
from triage.routing import escalate_ticket

logger = logging.getLogger(__name__)
CLAIMS_COLLECTION = "sla_claims"


def escalate_overdue(settings: Settings, now: dt.datetime | None = None) -> int:
    """Set missing deadlines, then escalate each overdue unanswered ticket once; returns how many."""
    now = now or utcnow()
    # Candidates from the in-memory ticket index (a query here reads every ticket on FerretDB), each
    # checked again on its document.
    unanswered = [
        row.id
        for row in ticket_index.shared().rows()
        if row.status in OPEN_STATUSES and row.first_response_at is None and not row.sla_breached
    ]
    overdue = []
    for ticket_id in unanswered:
        ticket = Ticket.objects(id=ticket_id).first()
        if ticket is None or ticket.status not in OPEN_STATUSES or ticket.first_response_at or ticket.sla_breached:
            continue
        if ticket.sla_due_at is None:
            ticket.sla_due_at = sla_due(ticket.created_at or now, ticket.priority, settings.sla_hours)
            Ticket.objects(id=ticket.id).update(set__sla_due_at=ticket.sla_due_at)
        if ticket.sla_due_at < now:
            overdue.append(ticket)
    claims = Ticket._get_db()[CLAIMS_COLLECTION]
    escalated = 0
    for ticket in overdue:
        try:  # one escalation per ticket even with two daemons: the claim _id is unique
            claims.insert_one({"_id": str(ticket.id), "at": now})
        except DuplicateKeyError:
            continue
        try:
            hours = settings.sla_hours.get(ticket.priority, 24.0)
            late = now - ticket.sla_due_at
            ticket.sla_breached = True
            reason = f"no response within {hours:g} h ({ticket.priority}); overdue by {_duration(late)}"
            escalate_ticket(ticket, reason, "system:sla", settings)
            escalated += 1
        except Exception:  # noqa: BLE001 - release the claim so the next pass retries
            logger.exception("ticket #%s: SLA escalation failed", ticket.number)
            claims.delete_one({"_id": str(ticket.id)})
    if escalated:
        logger.info("SLA job escalated %s overdue tickets", escalated)
    return escalated


def _duration(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"
