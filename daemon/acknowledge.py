"""The acknowledgement a requester gets for a new ticket: loop-safe and rate-limited."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections import Counter

from mongoengine import NotUniqueError
from pymongo import ReturnDocument, UpdateOne
from pymongo.errors import BulkWriteError

from config import Settings
from daemon.ack_policy import claim_overall_ack_slots, flag_for_review, sender_auth_failure
from daemon.headers import subject_excerpt
from daemon.outbox import SENDER_ID
from daemon.parse import ParsedEmail
from models import AckRateCounter, OutboundEmail, Ticket, utcnow
from models.base import retry_on_conflict
from models.links import create_status_token, create_status_tokens, status_url
from models.mailboxes import mailbox_of
from models.outbox import build_email, make_message_id, queue_emails, record_outbound

logger = logging.getLogger(__name__)
ACK_CLAIM_SECONDS = 120  # stored already claimed by the ingester, which sends it at once
ACK_HEADERS = {"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"}


def claim_ack_message_id(ticket: Ticket, settings: Settings) -> str:
    """The ticket's acknowledgement Message-ID: random (>= 128 bits), chosen when the ticket is built and
    stored on it; for a ticket stored without one, set now by a conditional update only one caller wins.
    Never recomputed, so nobody can derive it, and a ticket has one acknowledgement, ever."""
    if ticket.ack_message_id:
        return ticket.ack_message_id
    candidate = make_message_id(settings.support_address.rsplit("@", 1)[1])
    if Ticket.objects(id=ticket.id, ack_message_id=None).update_one(set__ack_message_id=candidate):
        ticket.ack_message_id = candidate
    else:
        stored = Ticket.objects(id=ticket.id).only("ack_message_id").first()
        ticket.ack_message_id = stored.ack_message_id if stored and stored.ack_message_id else candidate
    return ticket.ack_message_id


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
    """At most ACK_LIMIT_PER_HOUR acknowledgements per sender per clock hour."""
    return claim_rate_slots([address], settings)[0]


def claim_rate_slots(addresses: list[str], settings: Settings) -> list[bool]:
    """`claim_rate_slot` for each address in order, with two round trips for the whole list.

    Each sender has a counter per clock hour (upserted; expired by a TTL index). A bulk `$inc` adds this
    list's wants; the totals read back then bound how many went before ours. A concurrent ingester's
    increments can only make that bound larger, so the limit holds (at worst one of ours is refused).
    """
    if not addresses:  # e.g. a batch retried after a crash whose tickets all exist already
        return []
    wanted = Counter(addresses)
    hour = utcnow().replace(minute=0, second=0, microsecond=0)
    keys = {address: rate_key(address, hour) for address in wanted}
    collection = AckRateCounter._get_collection()
    updates = [
        UpdateOne(
            {"_id": keys[address]},
            {"$inc": {"count": count}, "$setOnInsert": {"expires_at": hour + dt.timedelta(hours=2)}},
            upsert=True,
        )
        for address, count in wanted.items()
    ]
    try:
        collection.bulk_write(updates, ordered=False)
        totals = {doc["_id"]: int(doc["count"]) for doc in collection.find({"_id": {"$in": list(keys.values())}})}
    except BulkWriteError as exc:  # lost first-upsert races: those counters one at a time
        failed = {error["index"] for error in exc.details.get("writeErrors", [])}
        totals = {doc["_id"]: int(doc["count"]) for doc in collection.find({"_id": {"$in": list(keys.values())}})}
        for index, address in enumerate(wanted):
            if index in failed:
                totals[keys[address]] = _count_acknowledgements(keys[address], wanted[address], hour)
    allowed = {a: max(0, min(n, settings.ack_limit_per_hour - (totals.get(keys[a], n) - n))) for a, n in wanted.items()}
    result = []
    for address in addresses:
        result.append(allowed[address] > 0)
        allowed[address] -= 1
    return result


def _count_acknowledgements(key: str, count: int, hour: dt.datetime) -> int:
    """Add `count` to one counter atomically; the new total."""
    collection = AckRateCounter._get_collection()
    found = retry_on_conflict(
        lambda: collection.find_one_and_update(
            {"_id": key},
            {"$inc": {"count": count}, "$setOnInsert": {"expires_at": hour + dt.timedelta(hours=2)}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
    )
    return int(found["count"])


def rate_key(address: str, hour: dt.datetime) -> str:
    """The counter `_id` of acknowledgements to this sender in the clock hour starting at `hour`."""
    sender = hashlib.sha256(address.encode()).hexdigest()[:24]
    return f"{sender}:{hour:%Y%m%d%H}"


def acknowledgement_text(
    ticket: Ticket, parsed: ParsedEmail, settings: Settings, token: str | None = None
) -> tuple[str, str, list[str]]:
    """Subject, body and References of the acknowledgement for a new ticket (`token`: its status link's,
    already stored; else one is created now)."""
    token = token or create_status_token(ticket.id, ticket.number, settings.status_link_days)
    link = status_url(settings.app_url, token)
    # The sender is unverified: echo no name and only a short, link-free excerpt of their subject.
    subject = f"[#{ticket.number}] {subject_excerpt(_strip_reply_prefix(parsed.subject)) or '(no subject)'}"
    text = (
        "Hello,\n\n"
        f"we received your message and opened ticket #{ticket.number} for it.\n"
        f"A member of our team will get back to you. You can follow the ticket here:\n{link}\n\n"
        f"To add information, reply to this email and keep the [#{ticket.number}] in the subject.\n\n"
        "This is an automatic reply."
    )
    mailbox = mailbox_of(settings)
    if mailbox is not None and mailbox.ack_signature.strip():  # set by an admin, not by the sender
        text += "\n\n-- \n" + mailbox.ack_signature.strip()
    references = list(dict.fromkeys([*parsed.references[-10:], parsed.message_id]))
    return subject, text, references


def build_acknowledgement(
    ticket: Ticket, parsed: ParsedEmail, settings: Settings, token: str | None = None
) -> OutboundEmail:
    """The acknowledgement of a new ticket, unsaved, claimed by this process (which sends it at once)."""
    subject, text, references = acknowledgement_text(ticket, parsed, settings, token)
    return build_email(
        kind="ack",
        to=[parsed.from_address],
        subject=subject,
        text=text,
        domain=settings.support_address.rsplit("@", 1)[1],
        ticket_number=ticket.number,
        in_reply_to=parsed.message_id,
        references=references,
        headers=ACK_HEADERS,
        message_id=claim_ack_message_id(ticket, settings),
        claim_owner=SENDER_ID,
        claim_seconds=ACK_CLAIM_SECONDS,
        mailbox=mailbox.mailbox_address if (mailbox := mailbox_of(settings)) else "",
    )


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
    if retry or not ticket.ack_message_id:
        message_id = claim_ack_message_id(ticket, settings)
        existing = OutboundEmail.objects(message_id=message_id).first()
        if existing is not None:  # a retry after a crash: never a second one (the outbox job sends this one)
            record_outbound(message_id, ticket.number)
            return existing
    if not claim_rate_slot(parsed.from_address, settings):
        logger.info("no acknowledgement for #%s: sender over %s per hour", ticket.number, settings.ack_limit_per_hour)
        return None
    if not claim_overall_ack_slots(1, settings):
        logger.warning("no acknowledgement for #%s: over %s per hour", ticket.number, settings.ack_limit_total_per_hour)
        return None
    ack = build_acknowledgement(ticket, parsed, settings)
    try:
        ack.save(force_insert=True)
    except NotUniqueError:  # a concurrent or earlier attempt stored this ticket's acknowledgement already
        ack = OutboundEmail.objects(message_id=ack.message_id).first()
    record_outbound(ack.message_id, ticket.number)
    return ack


def queue_acknowledgements(created: list[tuple[Ticket, ParsedEmail]], settings: Settings) -> dict[int, OutboundEmail]:
    """`queue_acknowledgement` for many new tickets (no earlier attempt): one bulk insert; ticket number -> ack."""
    wanted = []
    for ticket, parsed in created:
        reason = why_not_acknowledge(parsed, settings)
        if reason:
            logger.info("no acknowledgement for #%s: %s", ticket.number, reason)
        else:
            wanted.append((ticket, parsed))
    slots = claim_rate_slots([parsed.from_address for _, parsed in wanted], settings)
    within = [(ticket, parsed) for (ticket, parsed), allowed in zip(wanted, slots, strict=True) if allowed]
    for ticket, _ in (pair for pair, allowed in zip(wanted, slots, strict=True) if not allowed):
        logger.info("no acknowledgement for #%s: sender over %s per hour", ticket.number, settings.ack_limit_per_hour)
    overall = claim_overall_ack_slots(len(within), settings) if within else 0
    for ticket, _ in within[overall:]:
        logger.warning("no acknowledgement for #%s: over %s per hour", ticket.number, settings.ack_limit_total_per_hour)
    granted = within[:overall]
    tokens = create_status_tokens([(ticket.id, ticket.number) for ticket, _ in granted], settings.status_link_days)
    acks = [
        build_acknowledgement(ticket, parsed, settings, token)
        for (ticket, parsed), token in zip(granted, tokens, strict=True)
    ]
    return {ack.ticket_number: ack for ack in queue_emails(acks)}


def _strip_reply_prefix(subject: str) -> str:
    text = subject.strip()
    while text[:3].lower() in ("re:", "fw:") or text[:4].lower() == "fwd:":
        text = text.split(":", 1)[1].strip()
    return text
