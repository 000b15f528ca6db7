"""Response deadlines per priority; an overdue, unanswered ticket goes to an admin."""

from __future__ import annotations

import datetime as dt
import logging

from config import Settings
from models import Ticket, utcnow
from models.claims import claim, finish, make_owner_id
from models.outbox import queue_escalation_alert
from models.tickets import OPEN_STATUSES, SLA_LEASE, sla_due
from triage.routing import escalate_ticket

logger = logging.getLogger(__name__)
CLAIM_SECONDS = 300
MAX_PER_PASS = 500


def overdue_filter(now: dt.datetime) -> dict:
    """Open, past its deadline, unanswered and not escalated for it yet: served by the (status, sla_due_at) index."""
    return {
        "status": {"$in": list(OPEN_STATUSES)},
        "sla_due_at": {"$lt": now},
        "first_response_at": None,
        "sla_breached": {"$ne": True},
    }


def escalate_overdue(settings: Settings, now: dt.datetime | None = None) -> int:
    """Set missing deadlines, then escalate each overdue unanswered ticket once; returns how many.

    Each ticket is claimed (models/claims.py) before it is escalated, so two daemons never both escalate it;
    a crash mid-escalation leaves the claim to expire and the next pass retries.
    """
    now = now or utcnow()
    _set_missing_deadlines(settings, now)
    owner = make_owner_id()
    escalated = 0
    while escalated < MAX_PER_PASS:
        ticket = claim(Ticket, overdue_filter(now), owner, CLAIM_SECONDS, fields=SLA_LEASE, now=now)
        if ticket is None:
            break
        try:
            hours = settings.sla_hours.get(ticket.priority, 24.0)
            reason = (
                f"no response within {hours:g} h ({ticket.priority}); overdue by {_duration(now - ticket.sla_due_at)}"
            )
            ticket.sla_breached = True
            decision = escalate_ticket(ticket, reason, "system:sla", settings)
            alert_admins(ticket, reason, decision.assignee.email if decision.assignee else None, settings)
        except Exception:  # noqa: BLE001 - release the claim so the next pass retries
            logger.exception("ticket #%s: SLA escalation failed", ticket.number)
            finish(Ticket, ticket.id, owner, fields=SLA_LEASE, set_fields={"sla_breached": False})
            break
        finish(Ticket, ticket.id, owner, fields=SLA_LEASE, set_fields={"sla_breached": True})
        escalated += 1
    if escalated:
        logger.info("SLA job escalated %s overdue tickets", escalated)
    return escalated


def alert_admins(ticket: Ticket, reason: str, assignee: str | None, settings: Settings) -> None:
    """Every other active admin learns of the escalation by email (the assignee was notified by routing)."""
    queue_escalation_alert(
        ticket_number=ticket.number,
        subject=ticket.subject,
        reason=reason,
        actor="the SLA job",
        assignee=assignee or "nobody (no active admin)",
        link=f"{settings.app_url.rstrip('/')}/tickets/{ticket.number}",
        domain=settings.support_address.rsplit("@", 1)[-1],
        skip=(assignee,) if assignee else (),
    )


def _set_missing_deadlines(settings: Settings, now: dt.datetime, limit: int = 500) -> None:
    """Open tickets stored without a deadline (older data) get one: (status, sla_due_at) index with null."""
    for ticket in Ticket.objects(status__in=OPEN_STATUSES, sla_due_at=None).only("id", "created_at", "priority")[
        :limit
    ]:
        due = sla_due(ticket.created_at or now, ticket.priority, settings.sla_hours)
        Ticket.objects(id=ticket.id, sla_due_at=None).update_one(set__sla_due_at=due)


def _duration(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"
