"""The acknowledgement a requester gets for a new ticket: loop-safe and rate-limited."""

from __future__ import annotations

import hashlib
import logging

from mongoengine import NotUniqueError
from pymongo.errors import DuplicateKeyError

from config import Settings
from daemon.outbox import was_sent
from daemon.parse import ParsedEmail
from models import OutboundEmail, Ticket, queue_email, utcnow
from models.links import status_url
from models.outbox import record_outbound

logger = logging.getLogger(__name__)
RATE_COLLECTION = "ack_rate_claims"
ACK_CLAIM_SECONDS = 120  # stored already claimed by the ingester, which sends it at once
ACK_HEADERS = {"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"}


def ack_message_id(ticket_number: int, settings: Settings) -> str:
    """One fixed Message-ID per ticket: the outbox's unique index then allows one acknowledgement, ever."""
    domain = settings.support_address.rsplit("@", 1)[1]
    salt = hashlib.sha256(f"{settings.support_address}:{ticket_number}".encode()).hexdigest()[:10]
    return f"<ack-{ticket_number}-{salt}@{domain}>"


def why_not_acknowledge(parsed: ParsedEmail, settings: Settings) -> str:
    """'' when the sender may get an acknowledgement, else the reason not to."""
    ours = {settings.support_address.lower(), settings.mail_default_sender.lower(), settings.imap_user.lower()}
    if parsed.is_bounce:
        return "bounce"
    if parsed.auto_submitted:
        return f"auto-submitted ({parsed.auto_reason})"
    if parsed.from_address in ours:
        return "our own address"
    return ""


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
    link = status_url(settings.app_url, settings.secret_key, ticket.number, ticket.requester_email)
    subject = f"[#{ticket.number}] {_strip_reply_prefix(parsed.subject) or '(no subject)'}"[:998]
    text = (
        f"Hello{' ' + parsed.from_name if parsed.from_name else ''},\n\n"
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
    message_id = ack_message_id(ticket.number, settings)
    existing = OutboundEmail.objects(message_id=message_id).first() if retry else None
    if existing is not None:  # a retry after a crash: never a second acknowledgement
        record_outbound(message_id, ticket.number)
        if existing.state == "sending" and was_sent(existing):
            existing.state = "sent"  # the crashed sender got it out (its sent marker says so)
        return existing
    if not claim_rate_slot(parsed.from_address, settings):
        logger.info("no acknowledgement for #%s: sender over %s per hour", ticket.number, settings.ack_limit_per_hour)
        return None
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
    except NotUniqueError:
        record_outbound(message_id, ticket.number)
        return OutboundEmail.objects(message_id=message_id).first()


def _strip_reply_prefix(subject: str) -> str:
    text = subject.strip()
    while text[:3].lower() in ("re:", "fw:") or text[:4].lower() == "fwd:":
        text = text.split(":", 1)[1].strip()
    return text
