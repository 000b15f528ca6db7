"""Batch intake for the poller: the same store, acknowledge and ledger code as `ingest`, called on lists.

Each email is parsed once. Plain new emails (the bulk of a backlog) become tickets through
`store.create_tickets` and `acknowledge.queue_acknowledgements` (bulk inserts of the documents `ingest`
builds one at a time); anything unusual (a duplicate, a reply, a `[#N]` subject, an auto-reply, a bounce,
our own address, a failed insert) goes through `ingest_parsed` after the batch's new tickets exist, so
replies to them thread. The ledger entry of a new ticket is written last, so a crash at any point is
finished by the one-by-one path on the next pass (unique keys turn repeats into "already there").
"""

from __future__ import annotations

import logging

from config import Settings
from daemon import store
from daemon.acknowledge import queue_acknowledgements, why_not_acknowledge
from daemon.ingest import MAX_THREAD_LOOKUPS, ingest_parsed, ledger_entry, parse_or_reason, quarantine_unparseable
from daemon.outcomes import Created, Outcome
from daemon.parse import ParsedEmail
from models import MessageLedger, Ticket
from models.mail import ledger_key

logger = logging.getLogger(__name__)


def parse_all(items: list[tuple[str, bytes]]) -> list[ParsedEmail | str]:
    """Each (source, raw) parsed, or why it cannot be, in order. Pure: the poller runs it in a worker process."""
    return [parse_or_reason(raw, source) for source, raw in items]


def ingest_batch(
    items: list[tuple[str, bytes]], settings: Settings, parsed: list[ParsedEmail | str] | None = None
) -> list[Outcome]:
    """Ingest (source, raw) pairs (`parsed`: their `parse_all`, if done already); outcomes in the same order.

    Acknowledgements are left claimed, unsent."""
    if parsed is None:
        parsed = parse_all(items)
    outcomes: dict[int, Outcome] = {
        i: quarantine_unparseable(raw, p, settings, source)
        for i, ((source, raw), p) in enumerate(zip(items, parsed, strict=True))
        if isinstance(p, str)
    }
    emails = [(i, p) for i, p in enumerate(parsed) if isinstance(p, ParsedEmail)]
    fast = _plain_new(emails, settings)
    if fast:
        created = _create_many([email for _, email in fast], settings)
        outcomes.update({i: o for (i, _), o in zip(fast, created, strict=True) if o is not None})
    results: list[Outcome] = []
    for index, (source, raw) in enumerate(items):
        outcome = outcomes.get(index)
        if outcome is None:
            email = parsed[index]
            assert isinstance(email, ParsedEmail)
            outcome = ingest_parsed(email, raw, settings, source=source, send_ack=False)
        results.append(outcome)
    return results


def _plain_new(emails: list[tuple[int, ParsedEmail]], settings: Settings) -> list[tuple[int, ParsedEmail]]:
    """The emails that certainly open a new ticket: one `$in` query on the ledger for the whole batch."""
    ours = {settings.support_address.lower(), settings.mail_default_sender.lower(), settings.imap_user.lower()}
    keys = {ledger_key(e.message_id) for _, e in emails}
    keys |= {ledger_key(ref) for _, e in emails for ref in e.thread_ids[:MAX_THREAD_LOOKUPS]}
    known = {doc["_id"] for doc in MessageLedger._get_collection().find({"_id": {"$in": list(keys)}}, {"_id": 1})}
    batch_ids = {ledger_key(e.message_id) for _, e in emails}
    seen: set[str] = set()
    fast = []
    for index, email in emails:
        if email.auto_submitted or email.is_bounce or email.subject_ticket_number or email.from_address in ours:
            continue
        if why_not_acknowledge(email, settings):  # e.g. failed DMARC: the one-by-one path flags it
            continue
        key = ledger_key(email.message_id)
        if key in known or key in seen:
            continue
        seen.add(key)
        refs = {ledger_key(ref) for ref in email.thread_ids[:MAX_THREAD_LOOKUPS]}
        if refs & known or refs & batch_ids:
            continue
        fast.append((index, email))
    return fast


def _create_many(emails: list[ParsedEmail], settings: Settings) -> list[Outcome | None]:
    """Tickets, thread entries, acknowledgements, then ledger entries, each kind in one bulk insert.

    None for an email whose ticket already existed (the one-by-one path finishes it).
    """
    tickets = store.create_tickets(emails, settings)
    created: list[tuple[Ticket, ParsedEmail]] = [(t, e) for e, t in zip(emails, tickets, strict=True) if t]
    acks = queue_acknowledgements(created, settings)
    outcomes: dict[int, Outcome] = {}
    entries = []
    for ticket, email in created:
        ack = acks.get(ticket.number)
        outcome = Created(ticket.number, acknowledged=ack is not None, ack_id=str(ack.id) if ack else None, ack=ack)
        outcomes[ticket.number] = outcome
        entries.append(ledger_entry(email, Created(ticket.number), "created", ticket))
    store.insert_documents(MessageLedger, entries)  # an entry already there (a retry) is as good
    return [outcomes[t.number] if t is not None else None for t in tickets]
