"""What a reply threaded into a ticket changes: its status (reopened) and the assignee (notified).

Emailed replies and portal replies (which the web hands to the daemon as emails) both pass here, from
`daemon/ingest.py`, after the reply was added to the thread. Auto-replies change nothing; bounces never
get here. Both steps are safe to repeat after a crash: the reopening is one conditional update, and the
notification's Message-ID is chosen once per reply and kept on its thread entry (the outbox's unique
Message-ID turns a second queueing into "already there"), as the acknowledgement's is on the ticket.
"""

from __future__ import annotations

import logging
import uuid

from mongoengine import NotUniqueError
from pymongo import ReturnDocument

from config import Settings
from daemon.parse import ParsedEmail
from models import OutboundEmail, Ticket, TicketMessage, User, queue_email, utcnow
from models.base import retry_on_conflict
from models.outbox import make_message_id, record_outbound

logger = logging.getLogger(__name__)
CLOSED = ("resolved", "closed")


def _domain(settings: Settings) -> str:
    return settings.support_address.rsplit("@", 1)[-1]


def from_customer(ticket: Ticket, parsed: ParsedEmail) -> bool:
    """Did the ticket's customer side write this (its requester, or a participant who is not staff)?"""
    sender = parsed.from_address.lower()
    if parsed.auto_submitted or parsed.is_bounce:
        return False
    if sender == (ticket.requester_email or "").lower():
        return True
    if sender not in (ticket.participants or []):
        return False
    user = User.by_email(sender)
    return user is None or not user.is_staff


def reopen_on_reply(ticket: Ticket, parsed: ParsedEmail, settings: Settings, *, customer: bool) -> bool:
    """Set the ticket open again after a reply: a resolved or closed one for any reply but an auto-reply, a
    pending one only when the customer wrote. One conditional update; the winner records the status event."""
    if parsed.auto_submitted or parsed.is_bounce:
        return False
    statuses = [*CLOSED, "pending"] if customer else list(CLOSED)
    now = utcnow()
    before = retry_on_conflict(
        lambda: Ticket._get_collection().find_one_and_update(
            {"_id": ticket.id, "status": {"$in": statuses}},
            {"$set": {"status": "open", "updated_at": now}, "$unset": {"resolved_at": ""}},
            projection={"status": 1},
            return_document=ReturnDocument.BEFORE,
        )
    )
    if before is None:
        return False
    old = before.get("status", "")
    ticket.status, ticket.resolved_at = "open", None
    who = "customer replied" if customer else "reply received"
    TicketMessage(
        ticket=ticket.id,
        ticket_number=ticket.number,
        kind="event",
        public=False,
        message_id=f"<event-{uuid.uuid4().hex}@{_domain(settings)}>",
        author=_requester_id(ticket) if parsed.from_address == ticket.requester_email else None,
        from_address=parsed.from_address,
        text=f"status {old} -> open ({who}) by {parsed.from_address}",
        event="status",
    ).save(force_insert=True)
    logger.info("#%s: status %s -> open after a reply", ticket.number, old)
    return True


def _requester_id(ticket: Ticket) -> object:
    """The requester's user id without loading the user (the field holds a DBRef, an id or a User)."""
    ref = ticket._data.get("requester")
    return getattr(ref, "id", ref)


def notice_message_id(reply_message_id: str, settings: Settings) -> str | None:
    """The Message-ID of the assignee's notification about this reply: random, chosen once by a conditional
    update of the reply's thread entry (unique `message_id`), never recomputed; None without that entry."""
    messages = TicketMessage._get_collection()
    candidate = make_message_id(_domain(settings))
    won = messages.find_one_and_update(
        {"message_id": reply_message_id, "notice_message_id": None},
        {"$set": {"notice_message_id": candidate}},
        projection={"_id": 1},
        return_document=ReturnDocument.AFTER,
    )
    if won is not None:
        return candidate
    stored = messages.find_one({"message_id": reply_message_id}, {"notice_message_id": 1})
    return stored.get("notice_message_id") if stored else None


def notify_assignee(ticket: Ticket, parsed: ParsedEmail, settings: Settings) -> OutboundEmail | None:
    """Queue one email telling the assignee that the customer replied (None: no assignee, or queued before)."""
    assignee = ticket.assignee
    if not isinstance(assignee, User) or not assignee.email or assignee.email == parsed.from_address:
        return None
    message_id = notice_message_id(parsed.message_id, settings)
    if message_id is None:
        return None
    try:
        return queue_email(
            kind="notification",
            to=[assignee.email],
            subject=f"[#{ticket.number}] Customer replied: {ticket.subject}"[:300],
            text=(
                f"{parsed.from_address} replied on ticket #{ticket.number} (status now {ticket.status}).\n\n"
                f"Open the ticket: {settings.app_url.rstrip('/')}/tickets/{ticket.number}\n"
            ),
            domain=_domain(settings),
            ticket_number=ticket.number,
            message_id=message_id,
        )
    except NotUniqueError:  # queued before a crash: the retry must not send a second one
        record_outbound(message_id, ticket.number)
        return None
