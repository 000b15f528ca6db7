"""What staff do to a ticket: reply, note, status, escalate, assign, correct triage. Shared by pages,
API and Flask-Admin so every path records the same audit trail."""

from __future__ import annotations

import logging
import uuid

from config import Settings
from models import Ticket, TicketMessage, User, queue_email, record_audit, utcnow
from models.links import create_status_token, status_url
from models.outbox import make_message_id, queue_escalation_alert
from models.tickets import OPEN_STATUSES
from webadmin.tickets import thread_of

logger = logging.getLogger(__name__)

MAX_REFERENCES = 20


def _domain(settings: Settings) -> str:
    return settings.support_address.rsplit("@", 1)[-1]


def _event(
    ticket: Ticket, actor: User | None, text: str, settings: Settings, *, event: str | None = None, reason: str = ""
) -> None:
    """An internal thread entry recording what a person did (the ticket page's timeline shows it)."""
    TicketMessage(
        ticket=ticket,
        ticket_number=ticket.number,
        kind="event",
        public=False,
        message_id=f"<event-{uuid.uuid4().hex}@{_domain(settings)}>",
        author=actor,
        from_address=actor.email if actor else "",
        text=text,
        event=event,
        reason=reason.strip() or None,
    ).save()


def _touch(ticket: Ticket) -> None:
    ticket.updated_at = utcnow()
    ticket.save()


def reply(ticket: Ticket, author: User, text: str, settings: Settings) -> TicketMessage:
    """Store an outbound message and queue it in the outbox threaded to the requester's last email;
    the daemon's outbox job sends it (the web app never talks SMTP)."""
    thread = thread_of(ticket, public_only=True)
    inbound_ids = [m.message_id for m in thread if m.kind == "inbound"]
    in_reply_to = inbound_ids[-1] if inbound_ids else ticket.source_message_id
    chain = [m.message_id for m in thread] or [ticket.source_message_id]
    references = ([chain[0]] + chain[1:][-(MAX_REFERENCES - 1) :]) if len(chain) > 1 else chain
    link = status_url(settings.app_url, create_status_token(ticket.id, ticket.number, settings.status_link_days))
    body = f"{text.strip()}\n\n--\nFollow your request: {link}\n"
    subject = f"Re: [#{ticket.number}] {ticket.subject}"
    sender = ticket.mailbox or settings.support_address  # the address the ticket came in on
    message_id = make_message_id(sender.rsplit("@", 1)[-1])
    message = TicketMessage(
        ticket=ticket,
        ticket_number=ticket.number,
        kind="outbound",
        public=True,
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=references,
        author=author,
        from_address=sender,
        from_name=author.name or "",
        to=[ticket.requester_email],
        subject=subject,
        text=body,
        new_text=text.strip(),
        sent_at=utcnow(),
    ).save()
    try:
        queue_email(
            kind="reply",
            to=[ticket.requester_email],
            subject=subject,
            text=body,
            domain=_domain(settings),
            ticket_number=ticket.number,
            in_reply_to=in_reply_to,
            references=references,
            message_id=message_id,
            mailbox=ticket.mailbox or "",
        )
    except Exception:
        message.delete()  # nothing was queued, so do not show a reply that will never leave
        raise
    now = utcnow()
    ticket.first_response_at = ticket.first_response_at or now
    ticket.last_message_at = ticket.last_reply_at = now
    ticket.message_count = (ticket.message_count or 0) + 1
    old = ticket.status
    if old in ("new", "open"):
        ticket.status = "pending"
    _touch(ticket)
    if ticket.status != old:
        _event(ticket, author, f"status {old} -> pending (reply sent) by {author.email}", settings, event="status")
    return message


def add_note(ticket: Ticket, author: User, text: str, settings: Settings) -> TicketMessage:
    note = TicketMessage(
        ticket=ticket,
        ticket_number=ticket.number,
        kind="note",
        public=False,
        message_id=f"<note-{uuid.uuid4().hex}@{_domain(settings)}>",
        author=author,
        from_address=author.email,
        text=text.strip(),
    ).save()
    _touch(ticket)
    return note


def change_status(ticket: Ticket, actor: User, status: str, settings: Settings) -> None:
    old = ticket.status
    if old == status:
        return
    ticket.status = status
    if status in ("resolved", "closed"):
        ticket.resolved_at = ticket.resolved_at or utcnow()
    elif status in OPEN_STATUSES:
        ticket.resolved_at = None
    if status != "escalated" and old == "escalated":
        ticket.escalated = False
    _touch(ticket)
    _event(ticket, actor, f"status {old} -> {status} by {actor.email}", settings, event="status")


def escalate(ticket: Ticket, actor: User, reason: str, settings: Settings) -> None:
    """Give the ticket to an admin (one who holds it already, else the least loaded) with status escalated,
    and email every active admin the reason and a link (through the outbox)."""
    reason = reason.strip()
    previous = ticket.assignee
    old = previous.email if previous else "nobody"
    admin = previous if previous is not None and previous.role == "admin" and previous.active else _an_admin()
    ticket.escalated = True
    ticket.escalation_reason = reason
    ticket.escalated_at = utcnow()
    ticket.status = "escalated"
    if admin is not None and admin != previous:
        ticket.assignee, ticket.assigned_at = admin, utcnow()
        ticket.routing_reason = f"escalated by {actor.email}: {reason}"[:500]
    _touch(ticket)
    new = ticket.assignee.email if ticket.assignee else "nobody"
    record_audit(
        actor.email,
        "escalate",
        f"ticket:{ticket.number}",
        ticket_number=ticket.number,
        detail=f"{old} -> {new}",
        reason=reason,
    )
    _event(ticket, actor, f"escalated by {actor.email}: {reason}", settings, event="escalate", reason=reason)
    queue_escalation_alert(
        ticket_number=ticket.number,
        subject=ticket.subject,
        reason=reason,
        actor=actor.email,
        assignee=new,
        link=ticket_link(settings, ticket.number),
        domain=_domain(settings),
    )


def _an_admin() -> User | None:
    """The least-loaded active admin (triage's routing rule)."""
    from triage.routing import least_loaded_admin

    found = least_loaded_admin()
    return found[0] if found else None


def ticket_link(settings: Settings, number: int) -> str:
    return f"{settings.app_url.rstrip('/')}/tickets/{number}"


def deescalate(ticket: Ticket, actor: User, reason: str, settings: Settings) -> None:
    """An admin settles the escalation: the ticket is open again, with its assignee."""
    reason = reason.strip()
    ticket.escalated = False
    if ticket.status == "escalated":
        ticket.status = "open"
    _touch(ticket)
    record_audit(actor.email, "deescalate", f"ticket:{ticket.number}", ticket_number=ticket.number, reason=reason)
    _event(ticket, actor, f"de-escalated by {actor.email}", settings, event="deescalate", reason=reason)


def hand_back(ticket: Ticket, actor: User, settings: Settings) -> None:
    """Unassign and queue the ticket for triage again, so the daemon's routing gives it to someone else
    (routing passes over `actor`; when no one else fits, it escalates to an admin)."""
    old = ticket.assignee.email if ticket.assignee else "nobody"
    ticket.assignee, ticket.assigned_at = None, None
    ticket.handed_back_by = actor.id
    ticket.routing_reason = f"handed back to routing by {actor.email}"
    if ticket.escalated:
        ticket.escalated = False
        if ticket.status == "escalated":
            ticket.status = "open"
    _touch(ticket)
    record_audit(
        actor.email,
        "assign",
        f"ticket:{ticket.number}",
        ticket_number=ticket.number,
        detail=f"{old} -> nobody",
        reason="handed back to routing",
    )
    _event(ticket, actor, f"handed back to routing by {actor.email} (was {old})", settings, event="handback")
    request_retriage(ticket)


def assign(ticket: Ticket, actor: User, assignee: User | None, reason: str, settings: Settings) -> None:
    """Assign (or unassign with None). Assigning resolves an escalation."""
    old = ticket.assignee.email if ticket.assignee else "nobody"
    new = assignee.email if assignee else "nobody"
    ticket.assignee = assignee
    ticket.assigned_at = utcnow() if assignee else None
    ticket.routing_reason = f"assigned by {actor.email}" + (f": {reason.strip()}" if reason.strip() else "")
    if ticket.escalated and assignee is not None:
        ticket.escalated = False
        if ticket.status == "escalated":
            ticket.status = "open"
    _touch(ticket)
    if assignee is not None:
        User.objects(id=assignee.id).update_one(set__last_assigned_at=utcnow())
    record_audit(
        actor.email,
        "assign",
        f"ticket:{ticket.number}",
        ticket_number=ticket.number,
        detail=f"{old} -> {new}",
        reason=reason,
    )
    _event(ticket, actor, f"assigned {old} -> {new} by {actor.email}", settings, event="assign", reason=reason)


def take(ticket: Ticket, user: User, settings: Settings) -> bool:
    """Assign an unassigned ticket to `user`; False when someone else took it first.

    The claim is one conditional update (`assignee` still empty), so of two moderators taking the same
    ticket exactly one wins.
    """
    if ticket.assignee is not None:
        return False
    claimed = Ticket.objects(id=ticket.id, assignee=None).update_one(set__assignee=user.id, set__assigned_at=utcnow())
    if not claimed:
        return False
    assign(ticket, user, user, "took it from the queue", settings)
    return True


def correct_triage(
    ticket: Ticket,
    actor: User,
    settings: Settings,
    *,
    category: str | None = None,
    priority: str | None = None,
    required_skills: list[str] | None = None,
) -> list[str]:
    """Apply a human's category/priority/skills; the changed names become training labels."""
    wanted = {"category": category, "priority": priority, "required_skills": required_skills}
    changed = [name for name, value in wanted.items() if value is not None and value != ticket[name]]
    for name in changed:
        ticket[name] = wanted[name]
    if changed:
        mark_human_fields(ticket, changed)
        _touch(ticket)
        _event(ticket, actor, f"{', '.join(changed)} corrected by {actor.email}", settings, event="triage")
    return changed


def mark_human_fields(ticket: Ticket, names: list[str]) -> None:
    for name in names:
        if name not in ticket.triage.human_fields:
            ticket.triage.human_fields.append(name)


def request_retriage(ticket: Ticket) -> None:
    try:
        from triage.queue import request_retriage as queue_retriage
    except ImportError:
        ticket.triage.state = "pending"
        ticket.triage.attempts = 0
        ticket.triage.next_attempt_at = utcnow()
        ticket.triage.lease_until = None
        ticket.save()
        return
    queue_retriage(ticket)


def reroute_open_tickets_of(user: User, actor: User, settings: Settings) -> None:
    """Hand a deactivated or demoted moderator's open tickets to someone else (triage's routing)."""
    try:
        from triage.routing import reroute_open_tickets_of as reroute
    except ImportError:
        logger.info("routing not available; open tickets of user %s keep their assignee", user.id)
        return
    reroute(user, actor.email, settings)
