"""Skill-based routing: the best-matching, least-loaded moderator, else an admin (escalated)."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from config import Settings, load_settings
from models import Category, Skill, Ticket, User, queue_email, record_audit, utcnow
from models.tickets import OPEN_STATUSES
from models.users import staff_members

logger = logging.getLogger(__name__)
_NEVER = dt.datetime(1970, 1, 1)


@dataclass
class RoutingDecision:
    assignee: User | None
    reason: str
    escalated: bool = False
    matched_skills: list[str] = field(default_factory=list)


def _settings(settings: Settings | None) -> Settings:
    if settings is not None:
        return settings
    try:
        from flask import current_app

        return current_app.extensions["settings"]
    except (ImportError, RuntimeError, KeyError):
        return load_settings()


def open_ticket_count(user: User) -> int:
    """Open tickets assigned to `user`: a count on the (assignee, status) index."""
    return Ticket.objects(assignee=user.id, status__in=OPEN_STATUSES).count()


def _plural(count: int) -> str:
    return f"{count} open ticket" + ("" if count == 1 else "s")


def choose_moderator(ticket: Ticket, exclude: set[str] | None = None) -> RoutingDecision | None:
    """Rank moderators covering the required skills: overlap, then fewest open, then least recently assigned."""
    vocabulary = {s.name for s in Skill.objects(active=True).only("name")}
    required = [s.strip().lower() for s in ticket.required_skills or []]
    required = [s for s in dict.fromkeys(required) if s in vocabulary]
    related = set(required)
    category = Category.objects(name=ticket.category).first() if ticket.category else None
    if category is not None:
        related |= {s.lower() for s in category.default_skills if s.lower() in vocabulary}
    ranked = []
    for user in staff_members(("moderator",)):
        if exclude and str(user.id) in exclude:
            continue
        skills = {s.lower() for s in user.skills or []}
        if not set(required) <= skills:
            continue
        overlap = sorted(related & skills)
        load = open_ticket_count(user)
        ranked.append((-len(overlap), load, user.last_assigned_at or _NEVER, user.email, user, overlap))
    if not ranked:
        return None
    ranked.sort(key=lambda row: row[:4])
    _, load, _, _, user, overlap = ranked[0]
    matched = ", ".join(overlap) if overlap else "no specific skills required"
    return RoutingDecision(assignee=user, reason=f"matched {matched}; {_plural(load)}", matched_skills=overlap)


def least_loaded_admin(exclude: set[str] | None = None) -> tuple[User, int] | None:
    admins = [
        (open_ticket_count(a), a.last_assigned_at or _NEVER, a.email, a)
        for a in staff_members(("admin",))
        if not exclude or str(a.id) not in exclude
    ]
    if not admins:
        return None
    load, _, _, admin = min(admins, key=lambda row: row[:3])
    return admin, load


def route_ticket(
    ticket: Ticket, actor: str = "system:routing", settings: Settings | None = None, exclude: set[str] | None = None
) -> RoutingDecision:
    """Assign `ticket` to the best moderator, or escalate it to the least-loaded admin; notify the assignee."""
    decision = choose_moderator(ticket, exclude)
    if decision is None:
        wanted = ", ".join(ticket.required_skills or []) or "any skill"
        return escalate_ticket(ticket, f"no active moderator covers {wanted}", actor, settings, exclude)
    _assign(ticket, decision, actor, _settings(settings))
    return decision


def escalate_ticket(
    ticket: Ticket, reason: str, actor: str, settings: Settings | None = None, exclude: set[str] | None = None
) -> RoutingDecision:
    """Give `ticket` to the least-loaded admin with status escalated and the reason stored."""
    now = utcnow()
    ticket.status, ticket.escalated, ticket.escalation_reason, ticket.escalated_at = "escalated", True, reason, now
    current = ticket.assignee
    keep = current is not None and current.role == "admin" and current.active
    found = (current, open_ticket_count(current)) if keep and str(current.id) not in (exclude or set()) else None
    found = found or least_loaded_admin(exclude)  # an admin who already holds it keeps it
    if found is None:
        logger.error("ticket #%s: escalation (%s) found no active admin", ticket.number, reason)
        decision = RoutingDecision(assignee=None, reason=f"{reason}; no active admin", escalated=True)
    else:
        admin, load = found
        decision = RoutingDecision(
            assignee=admin, reason=f"escalated: {reason}; admin has {_plural(load)}", escalated=True
        )
    _assign(ticket, decision, actor, _settings(settings))
    return decision


def _assign(ticket: Ticket, decision: RoutingDecision, actor: str, settings: Settings) -> None:
    now = utcnow()
    ticket.assignee, ticket.routing_reason = decision.assignee, decision.reason[:500]
    ticket.assigned_at = now if decision.assignee else None
    ticket.updated_at = now
    ticket.save()
    action = "escalate" if decision.escalated else "assign"
    who = decision.assignee.email if decision.assignee else "nobody"
    record_audit(
        actor,
        action,
        f"ticket:{ticket.number}",
        ticket_number=ticket.number,
        detail=f"assignee {who}",
        reason=decision.reason,
    )
    if decision.assignee is None:
        return
    User.objects(id=decision.assignee.id).update(set__last_assigned_at=now)
    _notify(ticket, decision, settings)


def _notify(ticket: Ticket, decision: RoutingDecision, settings: Settings) -> None:
    if decision.assignee is None:
        return
    n = ticket.number
    heading = "Escalated to you" if decision.escalated else "Assigned to you"
    lines = [
        f"{heading}: ticket #{n} ({ticket.priority}, {ticket.category or 'uncategorised'}).",
        f"Why: {decision.reason}",
        *(
            ["Warning: the email seems to try to instruct the triage model; check category and priority."]
            if ticket.triage and ticket.triage.injection_suspected
            else []
        ),
        "",
        "Summary (machine-written, unverified):",
        ticket.summary or "(none)",
        "",
        "Helpful notes (machine-written, unverified):",
        ticket.helpful_notes or "(none)",
        "",
        f"Open the ticket: {settings.app_url.rstrip('/')}/tickets/{n}",
    ]
    queue_email(
        kind="notification",
        to=[decision.assignee.email],
        subject=f"[#{n}] {heading}: {ticket.subject}"[:300],
        text="\n".join(lines),
        domain=settings.support_address.rsplit("@", 1)[-1],
        ticket_number=n,
    )


def reroute_open_tickets_of(user: User, actor: str, settings: Settings | None = None) -> int:
    """Route every open ticket of `user` to someone else (used when a moderator is deactivated)."""
    moved = 0
    for ticket in Ticket.objects(assignee=user, status__in=OPEN_STATUSES):
        route_ticket(ticket, actor, settings, exclude={str(user.id)})
        moved += 1
    logger.info("rerouted %s open tickets of user %s", moved, user.id)
    return moved
