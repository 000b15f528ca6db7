"""A ticket's timeline: every event, who did it and when, from what the ticket, its thread, the audit log and the
outbox already store (each read through an index: thread by ticket, audit by ticket number, outbox by Message-ID)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from models import AuditEvent, OutboundEmail, Ticket, TicketMessage, User

# Actions the web records as thread events too (webadmin/ticket_actions.py): their audit rows would repeat them.
_WEB_EVENTS = ("assign", "escalate", "deescalate", "close")
_AUDIT_LABELS = {
    "assign": "assigned",
    "escalate": "escalated",
    "retriage": "queued for triage again",
    "status_links_revoke": "status links withdrawn",
}


@dataclass(frozen=True)
class Entry:
    at: dt.datetime
    kind: str  # created, acknowledged, triaged, assigned, escalated, status, reply, email, note, ...
    actor: str  # an address, or "system: ..." for the daemon's jobs
    text: str
    reason: str = ""
    label: str = ""  # auto-reply, bounce, ...


def _actor_of(message: TicketMessage) -> str:
    if message.from_address:
        return message.from_address
    author = message.author  # older events stored only the author
    return author.email if isinstance(author, User) else "system"


def _message_entry(message: TicketMessage, ticket: Ticket) -> Entry:
    at = message.created_at or ticket.created_at
    actor = _actor_of(message)
    if message.kind == "inbound":
        label = "auto-reply" if message.auto_submitted else ""
        return Entry(at, "email", message.from_address, f"email from {message.from_address}", label=label)
    if message.kind == "outbound":
        return Entry(at, "reply", actor, f"reply sent to {', '.join(message.to)}")
    if message.kind == "note":
        if message.auto_submitted:
            return Entry(at, "bounce", "mail system", "delivery failure report noted", label="bounce")
        return Entry(at, "note", actor, "internal note")
    return Entry(at, message.event or "event", actor, message.text, reason=message.reason or "")


def _audit_entry(event: AuditEvent) -> Entry | None:
    if "@" in event.actor and event.action in _WEB_EVENTS:
        return None  # shown from the thread event the same action wrote
    label = _AUDIT_LABELS.get(event.action, event.action.replace("_", " "))
    text = f"{label}: {event.detail}" if event.detail else label
    actor = event.actor.replace("system:", "system: ")
    return Entry(event.at, event.action, actor, text, reason=event.reason or "")


def _acknowledgement(ticket: Ticket) -> Entry | None:
    if not ticket.ack_message_id:
        return None
    ack = OutboundEmail.objects(message_id=ticket.ack_message_id).only("state", "sent_at", "created_at", "to").first()
    if ack is None:
        return None
    state = {"sent": "sent", "failed": "could not be sent"}.get(ack.state, "queued")
    return Entry(ack.sent_at or ack.created_at, "acknowledged", "system: daemon", f"acknowledgement {state}")


def _triage(ticket: Ticket) -> Entry | None:
    triage = ticket.triage
    if triage is None or not triage.completed_at:
        return None
    skills = ", ".join(ticket.required_skills or []) or "none"
    what = f"category {ticket.category or '—'}, priority {ticket.priority}, skills {skills}"
    corrected = f" (corrected by staff: {', '.join(triage.human_fields)})" if triage.human_fields else ""
    review = f"; to review: {triage.review_reason}" if triage.state == "review" and triage.review_reason else ""
    return Entry(
        triage.completed_at,
        "triaged",
        f"system: triage ({triage.provider or 'unknown provider'})",
        f"triaged by {triage.provider or 'unknown provider'}: {what}{corrected}{review}",
    )


def timeline(ticket: Ticket, messages: list[TicketMessage]) -> list[Entry]:
    """Every event of `ticket`, oldest first; `messages` is its thread (thread_of)."""
    entries = [
        Entry(
            ticket.created_at, "created", ticket.requester_email, f"created by an email from {ticket.requester_email}"
        )
    ]
    entries += [e for e in (_acknowledgement(ticket), _triage(ticket)) if e is not None]
    entries += [_message_entry(m, ticket) for m in messages if m.message_id != ticket.source_message_id]
    audit = AuditEvent.objects(ticket_number=ticket.number)
    entries += [e for e in (_audit_entry(a) for a in audit) if e is not None]
    return sorted(entries, key=lambda e: e.at or dt.datetime.min)
