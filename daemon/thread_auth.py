"""Who may write into a ticket by email, and what an unauthorised reply becomes.

A Message-ID in In-Reply-To/References or a `[#N]` in the subject is public knowledge (it travels in
every copy and can be guessed), so it only finds a candidate ticket; the sender decides whether the
email joins that thread: the requester, a participant, staff, or the recipient of the email it answers.
"""

from __future__ import annotations

import hashlib
import logging

from mongoengine import NotUniqueError

from daemon.parse import ParsedEmail
from models import OutboundEmail, Ticket, TicketMessage, User

logger = logging.getLogger(__name__)
INTERNAL_DOMAIN = "internal.helpdesk.invalid"


def sent_email(message_id: str | None) -> OutboundEmail | None:
    """The email we sent with this Message-ID (unique index), or None."""
    if not message_id:
        return None
    return OutboundEmail.objects(message_id=message_id).only("to", "ticket_number", "kind").first()


def may_write(ticket: Ticket, parsed: ParsedEmail, answered_message_id: str | None = None) -> bool:
    """May this sender add a public message to `ticket`?"""
    sender = parsed.from_address.lower()
    if sender == (ticket.requester_email or "").lower() or sender in (ticket.participants or []):
        return True
    sent = sent_email(answered_message_id)
    if sent is not None and sent.ticket_number == ticket.number and sender in (a.lower() for a in sent.to):
        return True
    user = User.by_email(sender)
    return user is not None and user.is_staff and bool(user.active)


def link_possibly_related(ticket: Ticket, related_number: int, parsed: ParsedEmail) -> None:
    """Mark a new ticket as possibly related to #N, with an internal note saying why (idempotent)."""
    Ticket.objects(id=ticket.id).update_one(add_to_set__related_to=related_number)
    # keyed by the new ticket's id, which a sender cannot know in advance: a crafted Message-ID cannot take
    # the note's place (a sender chooses their own Message-ID, so a hash of it alone is theirs to compute)
    key = hashlib.sha256(f"{ticket.id}:{parsed.message_id}:{related_number}".encode()).hexdigest()[:32]
    note = TicketMessage(
        ticket=ticket,
        ticket_number=ticket.number,
        kind="note",
        public=False,
        message_id=f"<related-{key}@{INTERNAL_DOMAIN}>",
        text=(
            f"Possibly related to #{related_number}: this email refers to that ticket's thread, but its sender "
            f"({parsed.from_address}) is not its requester, a participant or staff, so it opened a new ticket."
        ),
    )
    try:
        note.save(force_insert=True)
    except NotUniqueError:  # a retry after a crash: the note is there already
        pass
    logger.info("#%s opened as possibly related to #%s (sender not on that ticket)", ticket.number, related_number)
