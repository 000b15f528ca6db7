"""One entry point for every inbound email: `ingest(raw, settings) -> Outcome`.

Used by the poller (through daemon/bulk.py), `run_daemon.py ingest` and the tests. The Message-ID ledger decides
duplicates; a new ticket is announced in the ledger (intent) before it is written, so a retry
after a crash finishes the same ticket instead of creating another.
"""

from __future__ import annotations

import hashlib
import logging

from mongoengine import NotUniqueError, ValidationError
from pymongo.errors import ConnectionFailure

from config import Settings
from daemon import replies, store
from daemon.acknowledge import flag_failed_sender_authentication, queue_acknowledgement
from daemon.outcomes import Created, Duplicate, Ignored, Outcome, Quarantined, Threaded
from daemon.parse import SYNTHETIC_DOMAIN, ParsedEmail, UnparseableEmail, parse_email
from daemon.thread_auth import link_possibly_related, may_write, sent_email
from models import MessageLedger, QuarantinedEmail, Ticket, next_ticket_number, utcnow
from models.claims import claim, finish, make_owner_id

logger = logging.getLogger(__name__)
MAX_THREAD_LOOKUPS = 20
REINGEST_LEASE_SECONDS = 300


def ingest(raw: bytes, settings: Settings, *, source: str = "cli", send_ack: bool = True) -> Outcome:
    """Turn one raw email into a ticket, a thread entry, a recorded auto-message, or a quarantine record.

    `send_ack=False` leaves a new acknowledgement queued (the poller sends a batch's at once).
    Database outages propagate (the caller retries the message later); anything else that goes
    wrong with this message quarantines it, so a poison message never blocks the ones behind it.
    """
    return _ingest(raw, settings, source=source, send_ack=send_ack, quarantine=None)


def reingest_quarantined(quarantine_id: str, settings: Settings) -> Outcome:
    """Run a quarantined message through ingestion again (after a fix); the record keeps the result."""
    try:
        record = QuarantinedEmail.objects(id=quarantine_id).first()
    except ValidationError:  # not an ObjectId
        record = None
    if record is None:
        raise LookupError(f"no quarantined email {quarantine_id}")
    outcome = _reingest(record, settings)
    record.save()
    return outcome


def reingest_requested(settings: Settings, limit: int = 50) -> int:
    """The daemon's job: re-ingest quarantined emails the web panel asked for (`reingest_requested_at`),
    each under an atomic claim so that two daemons never run one twice; how many were done."""
    owner = make_owner_id()
    done = 0
    while done < limit:
        record = claim(QuarantinedEmail, {"reingest_requested_at": {"$lte": utcnow()}}, owner, REINGEST_LEASE_SECONDS)
        if record is None:
            break
        try:
            _reingest(record, settings)
        except ConnectionFailure:
            finish(QuarantinedEmail, record.id, owner)  # the database went away: the request stays for later
            raise
        finish(
            QuarantinedEmail,
            record.id,
            owner,
            set_fields={
                "reason": record.reason,
                "reingested_at": record.reingested_at,
                "reingest_result": record.reingest_result,
            },
            unset_fields=("reingest_requested_at",),
        )
        done += 1
    return done


def _reingest(record: QuarantinedEmail, settings: Settings) -> Outcome:
    """Ingest the record's raw bytes again; the result goes on `record` (the caller saves it)."""
    raw = record.raw.read() or b""
    MessageLedger.objects(key=_quarantine_ledger_key(raw)).delete()
    outcome = _ingest(raw, settings, source="reingest", send_ack=True, quarantine=record)
    record.reingested_at = utcnow()
    record.reingest_result = outcome.describe()
    logger.info("re-ingested quarantined %s: %s", record.id, outcome.describe())
    return outcome


def _ingest(
    raw: bytes, settings: Settings, *, source: str, send_ack: bool, quarantine: QuarantinedEmail | None
) -> Outcome:
    parsed = parse_or_quarantine(raw, settings, source=source, quarantine=quarantine)
    if not isinstance(parsed, ParsedEmail):
        return parsed
    return ingest_parsed(parsed, raw, settings, source=source, send_ack=send_ack, quarantine=quarantine)


def parse_or_reason(raw: bytes, source: str = "") -> ParsedEmail | str:
    """The parsed email, or why it cannot be parsed. Pure (no database), so it also runs in a worker process."""
    try:
        return parse_email(raw)
    except UnparseableEmail as exc:
        return str(exc)
    except Exception as exc:  # the parser must never take the daemon down
        logger.exception("parser failed on a message from %s", source)
        return f"parser error: {type(exc).__name__}: {exc}"[:500]


def parse_or_quarantine(
    raw: bytes, settings: Settings, *, source: str, quarantine: QuarantinedEmail | None = None
) -> ParsedEmail | Outcome:
    """The parsed email, or the outcome of quarantining bytes we cannot parse."""
    parsed = parse_or_reason(raw, source)
    return (
        parsed if isinstance(parsed, ParsedEmail) else quarantine_unparseable(raw, parsed, settings, source, quarantine)
    )


def quarantine_unparseable(
    raw: bytes, reason: str, settings: Settings, source: str, quarantine: QuarantinedEmail | None = None
) -> Outcome:
    """Keep bytes we cannot parse in quarantine with the reason (once per exact bytes)."""
    return _quarantine(raw, reason, settings, source, None, quarantine)


def ingest_parsed(
    parsed: ParsedEmail,
    raw: bytes,
    settings: Settings,
    *,
    source: str,
    send_ack: bool = True,
    quarantine: QuarantinedEmail | None = None,
) -> Outcome:
    """`ingest` after parsing (the batch path parses each email once and hands the unusual ones here)."""
    try:
        outcome = _route(parsed, settings)
    except ConnectionFailure:
        raise
    except Exception as exc:
        logger.exception("ingest failed for %s", _redact(parsed.message_id))
        reason = f"ingest error: {type(exc).__name__}: {exc}"[:500]
        return _quarantine(raw, reason, settings, source, parsed, quarantine)
    if send_ack and isinstance(outcome, Created) and outcome.ack_id:
        from daemon.outbox import deliver_claimed

        deliver_claimed([outcome.ack], settings)
    return outcome


def _route(parsed: ParsedEmail, settings: Settings) -> Outcome:
    entry = MessageLedger.lookup(parsed.message_id)
    if entry is not None and entry.content_digest and entry.content_digest != parsed.content_digest:
        # a different message reusing a Message-ID (broken mailers, copied test mail): keep it, under its own id
        logger.warning("Message-ID %s reused by a different message", _redact(parsed.message_id))
        parsed.message_id = f"<reused-{parsed.content_digest[:24]}@{SYNTHETIC_DOMAIN}>"
        entry = MessageLedger.lookup(parsed.message_id)
    if entry is not None:
        return Duplicate(entry.ticket_number)

    ours = {settings.support_address.lower(), settings.mail_default_sender.lower(), settings.imap_user.lower()}
    if parsed.from_address in ours:
        return _record(parsed, Ignored("sent from our own address"), "ignored")
    ticket, related = _find_thread(parsed)
    if parsed.is_bounce:
        return _bounce(parsed, settings)
    if ticket is None and parsed.subject_ticket_number:
        ticket, by_token = _ticket_by_subject_token(parsed)
        related = related or by_token
    if ticket is not None:
        store.append_message(ticket, parsed, settings)
        customer = replies.from_customer(ticket, parsed)
        reopened = replies.reopen_on_reply(ticket, parsed, settings, customer=customer)
        if customer:
            replies.notify_assignee(ticket, parsed, settings)
        return _record(parsed, Threaded(ticket.number, reopened=reopened), "threaded", ticket)
    if parsed.auto_submitted:
        return _record(parsed, Ignored(f"auto-reply ({parsed.auto_reason})"), "ignored")
    return _create(parsed, settings, related)


def _create(parsed: ParsedEmail, settings: Settings, related: int | None = None) -> Outcome:
    """A new ticket. Ticket.source_message_id is unique: after a crash between the ticket insert and the
    ledger insert, the retry finds that ticket and finishes it (thread entry, acknowledgement, ledger)."""
    requester = store.get_or_create_requester(parsed.from_address, parsed.from_name)
    ticket, existed = store.create_ticket(parsed, settings, next_ticket_number(), requester)
    if related is not None and related != ticket.number:
        link_possibly_related(ticket, related, parsed)
    flag_failed_sender_authentication(ticket, parsed, settings)
    ack = queue_acknowledgement(ticket, parsed, settings, retry=existed)
    _record(parsed, Created(ticket.number), "created", ticket)
    return Created(ticket.number, acknowledged=ack is not None, ack_id=str(ack.id) if ack else None, ack=ack)


def _find_thread(parsed: ParsedEmail) -> tuple[Ticket | None, int | None]:
    """(the ticket an email answers by In-Reply-To/References when its sender may write into it, else None;
    the number of a ticket it referred to without that right, for a "possibly related" link)."""
    related: int | None = None
    for message_id in parsed.thread_ids[:MAX_THREAD_LOOKUPS]:
        entry = MessageLedger.lookup(message_id)
        if entry is None or not entry.ticket_number:
            continue
        ticket = store.ticket_by_id(entry.ticket_id) or store.ticket_by_number(entry.ticket_number)
        if ticket is None:
            continue
        if may_write(ticket, parsed, message_id):
            return ticket, None
        related = related or ticket.number
    if related is not None:
        logger.info("reply into #%s from a sender not on it: opening a new ticket", related)
    return None, related


def _ticket_by_subject_token(parsed: ParsedEmail) -> tuple[Ticket | None, int | None]:
    """`[#N]` threads only for someone who may write into #N: anyone could quote a number."""
    ticket = store.ticket_by_number(parsed.subject_ticket_number)
    if ticket is None:
        return None, None
    if may_write(ticket, parsed):
        return ticket, None
    logger.info("[#%s] in the subject from a non-participant: opening a new ticket", ticket.number)
    return None, ticket.number


def _bounce(parsed: ParsedEmail, settings: Settings) -> Outcome:
    """A note only for a real delivery status notification about an email we sent; else ignored."""
    sent = sent_email(parsed.bounce_original_message_id) if parsed.is_dsn else None
    ticket = store.ticket_by_number(sent.ticket_number) if sent is not None and sent.ticket_number else None
    if ticket is None:
        return _record(parsed, Ignored("bounce that is not a delivery report for an email we sent"), "bounce")
    store.append_message(ticket, parsed, settings, kind="note", public=False)
    return _record(parsed, Threaded(ticket.number, note=True), "bounce", ticket)


def ledger_entry(parsed: ParsedEmail, outcome: Outcome, ledger_outcome: str, ticket: Ticket | None) -> MessageLedger:
    """The unsaved ledger entry recording what became of this email."""
    entry = MessageLedger(
        message_id=parsed.message_id,
        ticket_number=ticket.number if ticket else None,
        ticket_id=ticket.id if ticket else None,
        outcome=ledger_outcome,
        detail=outcome.describe()[:500],
        content_digest=parsed.content_digest,
    )
    entry.clean()
    return entry


def _record(parsed: ParsedEmail, outcome: Outcome, ledger_outcome: str, ticket: Ticket | None = None) -> Outcome:
    try:
        ledger_entry(parsed, outcome, ledger_outcome, ticket).save(force_insert=True)
    except NotUniqueError:
        pass
    return outcome


def _quarantine(
    raw: bytes,
    reason: str,
    settings: Settings,
    source: str,
    parsed: ParsedEmail | None,
    existing: QuarantinedEmail | None,
) -> Outcome:
    if existing is not None:  # a re-ingest that failed again: keep one record, with the new reason
        existing.reason = reason
        existing.save()
        return Quarantined(reason, str(existing.id))
    try:
        MessageLedger(
            message_id=f"<{_quarantine_ledger_key(raw)}@quarantine.invalid>",
            key=_quarantine_ledger_key(raw),
            outcome="quarantined",
            detail=reason[:500],
        ).save(force_insert=True)
    except NotUniqueError:
        return Duplicate(None)  # these exact bytes are already in quarantine
    record = QuarantinedEmail(
        reason=reason,
        size=len(raw),
        message_id=parsed.message_id if parsed else "",
        sender=parsed.from_address if parsed else "",
        subject=(parsed.subject if parsed else "")[:998],
        mailbox=source[:200],
    )
    record.raw.put(raw, content_type="message/rfc822", filename="message.eml")
    record.save()
    return Quarantined(reason, str(record.id))


def _quarantine_ledger_key(raw: bytes) -> str:
    return "q-" + hashlib.sha256(raw).hexdigest()[:38]


def _redact(message_id: str) -> str:
    return hashlib.sha256(message_id.encode()).hexdigest()[:12]
