"""Response deadlines per priority; an overdue, unanswered ticket goes to an admin."""

from __future__ import annotations

import datetime as dt
import logging

from pymongo.errors import DuplicateKeyError

from config import Settings
from models import Ticket, utcnow
from models.tickets import OPEN_STATUSES, sla_due
from triage.routing import escalate_ticket

logger = logging.getLogger(__name__)
CLAIMS_COLLECTION = "sla_claims"


def escalate_overdue(settings: Settings, now: dt.datetime | None = None) -> int:
    """Set missing deadlines, then escalate each overdue unanswered ticket once; returns how many."""
    now = now or utcnow()
    for ticket in Ticket.objects(status__in=OPEN_STATUSES, sla_due_at=None, first_response_at=None):
        due = sla_due(ticket.created_at or now, ticket.priority, settings.sla_hours)
        Ticket.objects(id=ticket.id, sla_due_at=None).update(set__sla_due_at=due)
    claims = Ticket._get_db()[CLAIMS_COLLECTION]
    escalated = 0
    overdue = Ticket.objects(status__in=OPEN_STATUSES, sla_due_at__lt=now, first_response_at=None, sla_breached=False)
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
