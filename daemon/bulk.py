"""Batch ingestion for the poller: plain new emails (the bulk of a backlog) are written with bulk inserts.

Anything unusual (a duplicate, a reply, a `[#N]` subject, an auto-reply, a bounce, our own address,
a parse error, a failed insert) goes through the one-by-one `ingest`, after the batch's new tickets
exist, so replies to them thread. Every insert keeps the same unique keys as `ingest`, so a crash at
any point is finished by the one-by-one path on the next pass.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from mongoengine import ValidationError
from pymongo.errors import BulkWriteError

from config import Settings
from daemon import store
from daemon.ack_policy import claim_overall_ack_slot
from daemon.acknowledge import (
    ACK_CLAIM_SECONDS,
    ACK_HEADERS,
    RATE_COLLECTION,
    acknowledgement_text,
    claim_ack_message_id,
    claim_rate_slot,
    rate_slot_id,
    why_not_acknowledge,
)
from daemon.ingest import ingest
from daemon.outcomes import Created, Outcome
from daemon.parse import ParsedEmail, parse_email
from models import MessageLedger, OutboundEmail, Ticket, TicketMessage, User, journal, utcnow
from models.mail import ledger_key
from models.outbox import Header
from models.tickets import sla_due
from models.users import EMAIL_KEYS

logger = logging.getLogger(__name__)


def ingest_batch(items: list[tuple[str, bytes]], settings: Settings) -> list[Outcome]:
    """Ingest (source, raw) pairs; outcomes in the same order. Acknowledgements are left claimed, unsent."""
    parsed: list[ParsedEmail | None] = []
    for _, raw in items:
        try:
            parsed.append(parse_email(raw))
        except Exception:  # the one-by-one path quarantines it with the reason
            parsed.append(None)
    fast = _plain_new(parsed, settings)
    outcomes: dict[int, Outcome] = {}
    if fast:
        created = _create_many([parsed[i] for i in fast], settings)  # type: ignore[misc]
        outcomes.update({i: o for i, o in zip(fast, created, strict=True) if o is not None})
    results: list[Outcome] = []
    for index, (source, raw) in enumerate(items):
        outcome = outcomes.get(index)
        results.append(outcome or ingest(raw, settings, source=source, send_ack=False))
    return results


def _plain_new(parsed: list[ParsedEmail | None], settings: Settings) -> list[int]:
    """Indexes of emails that certainly open a new ticket."""
    ours = {settings.support_address.lower(), settings.mail_default_sender.lower(), settings.imap_user.lower()}
    ledger = MessageLedger._get_collection()
    own_ids = [p.message_id for p in parsed if p]
    referenced = [ref for p in parsed if p for ref in p.thread_ids[:20]]
    # one find_one per key: on FerretDB only equality on `_id` is indexed ($in scans the collection)
    keys = dict.fromkeys(ledger_key(message_id) for message_id in own_ids + referenced)
    known = {key for key in keys if ledger.find_one({"_id": key}, {"_id": 1})}
    batch_ids = {ledger_key(message_id) for message_id in own_ids}
    seen: set[str] = set()
    fast: list[int] = []
    for index, email in enumerate(parsed):
        if email is None or email.auto_submitted or email.is_bounce or email.subject_ticket_number:
            continue
        if why_not_acknowledge(email, settings):  # e.g. failed DMARC: the one-by-one path flags it
            continue
        key = ledger_key(email.message_id)
        if key in known or key in seen or email.from_address in ours:
            continue
        seen.add(key)
        if any(ledger_key(ref) in known or ledger_key(ref) in batch_ids for ref in email.thread_ids[:20]):
            continue
        fast.append(index)
    return fast


def _insert_many(collection, documents: list[dict]) -> set[int]:  # noqa: ANN001
    """Insert unordered; the indexes that failed (duplicates)."""
    if not documents:
        return set()
    try:
        collection.insert_many(documents, ordered=False)
    except BulkWriteError as exc:
        return {error["index"] for error in exc.details.get("writeErrors", [])}
    return set()


def claim_numbers(count: int) -> list[int]:
    """`count` distinct ticket numbers, each claimed by a unique `_id` (as next_ticket_number does)."""
    database = Ticket._get_db()
    claims, counters = database["ticket_number_claims"], database["counters"]
    candidate = int((counters.find_one({"_id": "ticket_number"}) or {}).get("value", 0)) + 1
    numbers: list[int] = []
    while len(numbers) < count:
        wanted = list(range(candidate, candidate + count - len(numbers)))
        failed = _insert_many(claims, [{"_id": n, "at": utcnow()} for n in wanted])
        numbers += [n for i, n in enumerate(wanted) if i not in failed]
        candidate = wanted[-1] + 1
    counters.update_one({"_id": "ticket_number"}, {"$max": {"value": max(numbers)}}, upsert=True)
    return numbers


def _requesters(emails: list[ParsedEmail]) -> dict[str, object]:
    """address -> user id, creating users (role "user") on first contact."""
    names: dict[str, str] = {}
    for email in emails:
        names.setdefault(email.from_address, email.from_name)
    documents = []
    for address, name in names.items():
        user = User(email=address, name=name[:200], role="user")
        user.validate()
        documents.append(user.to_mongo().to_dict())
    failed = _insert_many(User._get_collection(), documents)
    ids = {doc["email"]: doc["_id"] for i, doc in enumerate(documents) if i not in failed}
    _insert_many(User._get_db()[EMAIL_KEYS], [{"_id": email, "user": user_id} for email, user_id in ids.items()])
    for i in failed:  # already known
        known = User.by_email(documents[i]["email"], scan_if_unknown=True)
        if known is not None:
            ids[known.email] = known.id
    return ids


def _create_many(emails: list[ParsedEmail], settings: Settings) -> list[Outcome | None]:
    users = _requesters(emails)
    numbers = claim_numbers(len(emails))
    now = utcnow()
    tickets: list[Ticket | None] = []
    for email, number in zip(emails, numbers, strict=True):
        candidate: Ticket | None = Ticket(
            number=number,
            subject=email.subject or "(no subject)",
            requester=users[email.from_address],
            requester_email=email.from_address,
            participants=store.participants_of(email, settings),
            source_message_id=email.message_id,
            created_at=now,
            updated_at=now,
            last_message_at=now,
            message_count=1,
            sla_due_at=sla_due(now, "medium", settings.sla_hours),
        )
        try:
            candidate.validate()  # type: ignore[union-attr]
        except ValidationError:
            candidate = None
        tickets.append(candidate)
    documents = [t.to_mongo().to_dict() for t in tickets if t is not None]
    failed = _insert_many(Ticket._get_collection(), documents)
    inserted: list[Ticket | None] = []
    position = 0
    for candidate in tickets:
        if candidate is None:
            inserted.append(None)
            continue
        ok = position not in failed
        if ok:
            candidate.id = documents[position]["_id"]
        inserted.append(candidate if ok else None)
        position += 1
    created = [(e, t) for e, t in zip(emails, inserted, strict=True) if t is not None]
    entries = [_entry(e, t, settings) for e, t in created]
    failed_entries = _insert_many(TicketMessage._get_collection(), entries)
    # Raw inserts bypass the Journaled documents: tell the panel's ticket list (models/journal.py).
    journal.record(
        tickets=[t.id for _, t in created],
        messages=[d["_id"] for i, d in enumerate(entries) if i not in failed_entries],
    )
    acks = _acknowledgements(created, settings)
    ledger = [
        {
            "_id": ledger_key(e.message_id),
            "message_id": e.message_id,
            "ticket_number": t.number,
            "ticket_id": t.id,
            "direction": "in",
            "outcome": "created",
            "detail": f"created #{t.number}",
            "content_digest": e.content_digest,
            "created_at": now,
        }
        for e, t in created
    ]
    _insert_many(MessageLedger._get_collection(), ledger)
    outcomes: list[Outcome | None] = []
    for maybe_ticket in inserted:
        if maybe_ticket is None:
            outcomes.append(None)
            continue
        ack = acks.get(maybe_ticket.number)
        ack_id = str(ack.id) if ack else None
        outcomes.append(Created(maybe_ticket.number, acknowledged=ack is not None, ack_id=ack_id, ack=ack))
        logger.debug("created #%s", maybe_ticket.number)
    return outcomes


def _entry(email: ParsedEmail, ticket: Ticket, settings: Settings) -> dict:
    entry = TicketMessage(
        ticket=ticket,
        ticket_number=ticket.number,
        kind="inbound",
        message_id=email.message_id,
        in_reply_to=email.in_reply_to,
        references=email.references[-50:],
        author=ticket._data["requester"],  # the id: no dereference query per entry
        from_address=email.from_address,
        from_name=email.from_name,
        to=email.to,
        cc=email.cc,
        subject=email.subject,
        sent_at=email.date,
        text=email.text,
        new_text=email.new_text,
        html=email.html,
        created_at=ticket.created_at,
    )
    entry.attachments = store.store_attachments(email, settings)
    return entry.to_mongo().to_dict()


def _acknowledgements(created: list[tuple[ParsedEmail, Ticket]], settings: Settings) -> dict[int, OutboundEmail]:
    """Queue (already claimed) one acknowledgement per new ticket, within the per-sender hourly limit."""
    slots = [{"_id": rate_slot_id(e.from_address, 0), "at": utcnow()} for e, _ in created]
    failed = _insert_many(Ticket._get_db()[RATE_COLLECTION], slots)
    allowed = [
        (e, t)
        for i, (e, t) in enumerate(created)
        if (i not in failed or claim_rate_slot(e.from_address, settings)) and claim_overall_ack_slot(settings)
    ]
    lease = utcnow() + dt.timedelta(seconds=ACK_CLAIM_SECONDS)
    batch = uuid.uuid4().hex
    documents, emails = [], []
    for email, ticket in allowed:
        subject, text, references = acknowledgement_text(ticket, email, settings)
        outbound = OutboundEmail(
            message_id=claim_ack_message_id(ticket, settings)[0],
            kind="ack",
            ticket_number=ticket.number,
            to=[email.from_address],
            subject=subject,
            text=text,
            in_reply_to=email.message_id,
            references=references,
            headers=[Header(name=name, value=value) for name, value in ACK_HEADERS.items()],
            state="sending",
            attempts=1,
            lease_until=lease,
            batch=batch,
        )
        documents.append(outbound.to_mongo().to_dict())
        emails.append(outbound)
    failed = _insert_many(OutboundEmail._get_collection(), documents)
    for document, outbound in zip(documents, emails, strict=True):
        outbound.id = document["_id"]
    journal.record(outbox=[doc["_id"] for i, doc in enumerate(documents) if i not in failed])
    queued = [doc for i, doc in enumerate(documents) if i not in failed]
    _insert_many(
        MessageLedger._get_collection(),
        [
            {
                "_id": ledger_key(doc["message_id"]),
                "message_id": doc["message_id"],
                "ticket_number": doc["ticket_number"],
                "direction": "out",
                "outcome": "outbound",
                "detail": "",
                "created_at": utcnow(),
            }
            for doc in queued
        ],
    )
    return {e.ticket_number: e for i, e in enumerate(emails) if i not in failed}
