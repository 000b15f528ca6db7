"""The acknowledgement a requester gets for a new ticket: loop-safe and rate-limited."""

from __future__ import annotations

import hashlib
import logging

from mongoengine import NotUniqueError
from pymongo.errors import DuplicateKeyError

from config import Settings
from daemon.ack_policy import claim_overall_ack_slot, flag_for_review, sender_auth_failure
from daemon.headers import subject_excerpt
from daemon.outbox import was_sent
from daemon.parse import ParsedEmail
from models import OutboundEmail, Ticket, queue_email, utcnow
from models.links import create_status_token, status_url
from models.outbox import make_message_id, record_outbound

logger = logging.getLogger(__name__)
RATE_COLLECTION = "ack_rate_claims"
ACK_CLAIM_SECONDS = 120  # stored already claimed by the ingester, which sends it at once
ACK_HEADERS = {"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"}


def claim_ack_message_id(ticket: Ticket, settings: Settings) -> tuple[str, bool]:
    """(the ticket's acknowledgement Message-ID, True when this call chose it).

    The id is random and stored on the ticket by a conditional update that only one caller wins, so a
    ticket has one acknowledgement, ever, and nobody can compute its id.
    """
    candidate = make_message_id(settings.support_address.rsplit("@", 1)[1])
    won = Ticket.objects(id=ticket.id, ack_message_id=None).update_one(set__ack_message_id=candidate)
    if won:
        ticket.ack_message_id = candidate
        return candidate, True
    stored = Ticket.objects(id=ticket.id).only("ack_message_id").first()
    ticket.ack_message_id = stored.ack_message_id if stored else candidate
    return ticket.ack_message_id, False


def why_not_acknowledge(parsed: ParsedEmail, settings: Settings) -> str:
    """'' when the sender may get an acknowledgement, else the reason not to."""
    ours = {settings.support_address.lower(), settings.mail_default_sender.lower(), settings.imap_user.lower()}
    if parsed.is_bounce:
        return "bounce"
    if parsed.auto_submitted:
        return f"auto-submitted ({parsed.auto_reason})"
    if parsed.from_address in ours:
        return "our own address"
    failure = sender_auth_failure(parsed, settings.authserv_id)
    if failure:
        return f"sender failed authentication at our server ({failure})"
    return ""


def flag_failed_sender_authentication(ticket: Ticket, parsed: ParsedEmail, settings: Settings) -> None:
    """Mark a new ticket for review when our receiving server saw its sender fail DMARC or SPF."""
    failure = sender_auth_failure(parsed, settings.authserv_id)
    if failure:
        flag_for_review(ticket, f"sender failed {failure} ({settings.authserv_id}); not acknowledged")


def claim_rate_slot(address: str, settings: Settings) -> bool:
    """At most ACK_LIMIT_PER_HOUR acknowledgements per sender per clock hour.

    Each slot is a unique `_id`, so the limit holds even with concurrent ingesters (FerretDB
    counters are not atomic).
    """
    database = Ticket._get_db()
    for slot in range(settings.ack_limit_per_hour):
        try:
            database[RATE_COLLECTION].insert_one({"_id": rate_slot_id(address, slot), "at": utcnow()})
            return True
        except DuplicateKeyError:
            continue
    return False


def rate_slot_id(address: str, slot: int) -> str:
    """The `_id` of acknowledgement number `slot` to this sender in the current clock hour."""
    sender = hashlib.sha256(address.encode()).hexdigest()[:24]
    return f"{sender}:{utcnow().strftime('%Y%m%d%H')}:{slot}"


def acknowledgement_text(ticket: Ticket, parsed: ParsedEmail, settings: Settings) -> tuple[str, str, list[str]]:
    """Subject, body and References of the acknowledgement for a new ticket."""
    link = status_url(settings.app_url, create_status_token(ticket.id, ticket.number, settings.status_link_days))
    # The sender is unverified: echo no name and only a short, link-free excerpt of their subject.
    subject = f"[#{ticket.number}] {subject_excerpt(_strip_reply_prefix(parsed.subject)) or '(no subject)'}"
    text = (
        "Hello,\n\n"
        f"we received your message and opened ticket #{ticket.number} for it.\n"
        f"A member of our team will get back to you. You can follow the ticket here:\n{link}\n\n"
        f"To add information, reply to this email and keep the [#{ticket.number}] in the subject.\n\n"
        "This is an automatic reply."
    )
    references = list(dict.fromkeys([*parsed.references[-10:], parsed.message_id]))
    return subject, text, references


def queue_acknowledgement(
    ticket: Ticket, parsed: ParsedEmail, settings: Settings, *, retry: bool = False
) -> OutboundEmail | None:
    """Queue (idempotently) the acknowledgement for a new ticket; None when none is due.

    `retry`: an earlier attempt for this email crashed, so look for its acknowledgement first.
    """
    reason = why_not_acknowledge(parsed, settings)
    if reason:
        logger.info("no acknowledgement for #%s: %s", ticket.number, reason)
        return None
    if retry or ticket.ack_message_id:
        message_id = ticket.ack_message_id or getattr(Ticket.objects(id=ticket.id).first(), "ack_message_id", None)
        existing = OutboundEmail.objects(message_id=message_id).first() if message_id else None
        if existing is not None:  # a retry after a crash: never a second acknowledgement
            record_outbound(existing.message_id, ticket.number)
            if existing.state == "sending" and was_sent(existing):
                existing.state = "sent"  # the crashed sender got it out (its sent marker says so)
            return existing
    if not claim_rate_slot(parsed.from_address, settings):
        logger.info("no acknowledgement for #%s: sender over %s per hour", ticket.number, settings.ack_limit_per_hour)
        return None
    if not claim_overall_ack_slot(settings):
        logger.warning("no acknowledgement for #%s: over %s per hour", ticket.number, settings.ack_limit_total_per_hour)
        return None
    message_id, _chosen_now = claim_ack_message_id(ticket, settings)
    subject, text, references = acknowledgement_text(ticket, parsed, settings)
    try:
        return queue_email(
            kind="ack",
            to=[parsed.from_address],
            subject=subject,
            text=text,
            domain=settings.support_address.rsplit("@", 1)[1],
            ticket_number=ticket.number,
            in_reply_to=parsed.message_id,
            references=references,
            headers=ACK_HEADERS,
            message_id=message_id,
            claim_seconds=ACK_CLAIM_SECONDS,
        )
    except NotUniqueError:  # a concurrent or earlier attempt stored this ticket's acknowledgement already
        record_outbound(message_id, ticket.number)
        return OutboundEmail.objects(message_id=message_id).first()


def _strip_reply_prefix(subject: str) -> str:
    text = subject.strip()
    while text[:3].lower() in ("re:", "fw:") or text[:4].lower() == "fwd:":
        text = text.split(":", 1)[1].strip()
    return text
