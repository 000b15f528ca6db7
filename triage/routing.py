"""Skill-based routing: the best-matching, least-loaded moderator, else an admin (escalated)."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from bson import ObjectId

from config import Settings, load_settings
from models import Category, OutboundEmail, Skill, Ticket, User, record_audit, utcnow
from models.outbox import build_email, queue_emails
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
    escalation_reason: str = ""  # why it went to an admin (stored on the ticket)


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


class RoutingContext:
    """What routing decides from, read once: active skills, the categories' default skills, active staff and
    their open loads. A batch routes many tickets from one context, counting each assignment in memory."""

    def __init__(
        self,
        vocabulary: set[str],
        category_skills: dict[str, list[str]],
        staff: list[User],
        loads: dict[ObjectId, int],
    ) -> None:
        self.vocabulary, self.category_skills, self.loads = vocabulary, category_skills, loads
        self.moderators = [u for u in staff if u.role == "moderator"]
        self.admins = [u for u in staff if u.role == "admin"]

    @classmethod
    def read(cls) -> RoutingContext:
        """Three indexed reads, whatever the number of tickets to route. Open loads are counted when a moderator
        is first a candidate (`load_of`): one ticket needing billing counts the billing moderators' tickets only
        (an aggregation of every staff member's open tickets took 0.1-0.16 s at 100,000 tickets)."""
        vocabulary = {s.name for s in Skill.objects(active=True).only("name")}
        categories = {c.name: list(c.default_skills or []) for c in Category.objects.only("name", "default_skills")}
        staff = staff_members(("moderator", "admin"))
        return cls(vocabulary, categories, staff, {})

    def load_of(self, user: User) -> int:
        if user.id not in self.loads:
            self.loads[user.id] = open_ticket_count(user)
        return self.loads[user.id]

    def count_assignment(self, user: User, now: dt.datetime) -> None:
        self.loads[user.id] = self.load_of(user) + 1
        user.last_assigned_at = now

    def choose_moderator(self, ticket: Ticket, exclude: set[str] | None = None) -> RoutingDecision | None:
        """Moderators covering the required skills: overlap, then fewest open, then least recently assigned."""
        required = [s.strip().lower() for s in ticket.required_skills or []]
        required = [s for s in dict.fromkeys(required) if s in self.vocabulary]
        related = set(required)
        if ticket.category in self.category_skills:
            related |= {s.lower() for s in self.category_skills[ticket.category] if s.lower() in self.vocabulary}
        ranked = []
        for user in self.moderators:
            if exclude and str(user.id) in exclude:
                continue
            skills = {s.lower() for s in user.skills or []}
            if not set(required) <= skills:
                continue
            overlap = sorted(related & skills)
            load = self.load_of(user)
            ranked.append((-len(overlap), load, user.last_assigned_at or _NEVER, user.email, user, overlap))
        if not ranked:
            return None
        ranked.sort(key=lambda row: row[:4])
        _, load, _, _, user, overlap = ranked[0]
        matched = ", ".join(overlap) if overlap else "no specific skills required"
        return RoutingDecision(assignee=user, reason=f"matched {matched}; {_plural(load)}", matched_skills=overlap)

    def least_loaded_admin(self, exclude: set[str] | None = None) -> tuple[User, int] | None:
        admins = [
            (self.load_of(a), a.last_assigned_at or _NEVER, a.email, a)
            for a in self.admins
            if not exclude or str(a.id) not in exclude
        ]
        if not admins:
            return None
        load, _, _, admin = min(admins, key=lambda row: row[:3])
        return admin, load

    def escalation(self, ticket: Ticket, reason: str, exclude: set[str] | None = None) -> RoutingDecision:
        """To the admin who already holds `ticket`, else the least-loaded admin (None when there is none)."""
        current = ticket.assignee
        keep = current is not None and current.role == "admin" and current.active
        found = (current, self.load_of(current)) if keep and str(current.id) not in (exclude or set()) else None
        found = found or self.least_loaded_admin(exclude)
        if found is None:
            logger.error("ticket #%s: escalation (%s) found no active admin", ticket.number, reason)
            return RoutingDecision(None, f"{reason}; no active admin", escalated=True, escalation_reason=reason)
        admin, load = found
        text = f"escalated: {reason}; admin has {_plural(load)}"
        return RoutingDecision(admin, text, escalated=True, escalation_reason=reason)

    def decide(self, ticket: Ticket, exclude: set[str] | None = None) -> RoutingDecision:
        """The best moderator, or an escalation to an admin when no active moderator covers the skills.

        `exclude`: user ids (str) passed over, e.g. the one who handed the ticket back to routing."""
        decision = self.choose_moderator(ticket, exclude)
        if decision is None:
            wanted = ", ".join(ticket.required_skills or []) or "any skill"
            other = "other " if exclude else ""
            decision = self.escalation(ticket, f"no {other}active moderator covers {wanted}", exclude)
        return decision


def choose_moderator(ticket: Ticket, exclude: set[str] | None = None) -> RoutingDecision | None:
    """Rank moderators covering the required skills: overlap, then fewest open, then least recently assigned."""
    return RoutingContext.read().choose_moderator(ticket, exclude)


def least_loaded_admin(exclude: set[str] | None = None) -> tuple[User, int] | None:
    return RoutingContext.read().least_loaded_admin(exclude)


def route_ticket(
    ticket: Ticket, actor: str = "system:routing", settings: Settings | None = None, exclude: set[str] | None = None
) -> RoutingDecision:
    """Assign `ticket` to the best moderator, or escalate it to the least-loaded admin; notify the assignee."""
    decision = RoutingContext.read().decide(ticket, exclude)
    if decision.escalated:
        _mark_escalated(ticket, decision.escalation_reason)
    _assign(ticket, decision, actor, _settings(settings))
    return decision


def escalate_ticket(
    ticket: Ticket, reason: str, actor: str, settings: Settings | None = None, exclude: set[str] | None = None
) -> RoutingDecision:
    """Give `ticket` to the least-loaded admin with status escalated and the reason stored."""
    decision = RoutingContext.read().escalation(ticket, reason, exclude)  # an admin who already holds it keeps it
    _mark_escalated(ticket, reason)
    _assign(ticket, decision, actor, _settings(settings))
    return decision


def _mark_escalated(ticket: Ticket, reason: str) -> None:
    ticket.status, ticket.escalated, ticket.escalation_reason, ticket.escalated_at = "escalated", True, reason, utcnow()


def _assign(ticket: Ticket, decision: RoutingDecision, actor: str, settings: Settings) -> None:
    now = utcnow()
    ticket.assignee, ticket.routing_reason = decision.assignee, decision.reason[:500]
    ticket.assigned_at = now if decision.assignee else None
    ticket.updated_at = now
    ticket.save()
    record_audit(actor, **audit_fields(ticket, decision))
    if decision.assignee is None:
        return
    User.objects(id=decision.assignee.id).update(set__last_assigned_at=now)
    queue_emails([notification_email(ticket, decision, settings)])


def audit_fields(ticket: Ticket, decision: RoutingDecision) -> dict:
    """The audit entry of an assignment or escalation (without the actor)."""
    who = decision.assignee.email if decision.assignee else "nobody"
    return {
        "action": "escalate" if decision.escalated else "assign",
        "target": f"ticket:{ticket.number}",
        "ticket_number": ticket.number,
        "detail": f"assignee {who}",
        "reason": decision.reason,
    }


def notification_email(ticket: Ticket, decision: RoutingDecision, settings: Settings) -> OutboundEmail:
    """The unsaved email telling the assignee about `ticket` (queued with models.queue_emails)."""
    assert decision.assignee is not None
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
    return build_email(
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
