"""The daemon's side of web and API submissions (models/submissions.py): ingest them like emails.

The web app stores each confirmed ticket or portal reply as an RFC 822 message; this job claims it
(models/claims.py) about every half second and runs it through ingestion: a reply through `ingest_parsed`
exactly as an emailed reply, a new ticket through the same store and acknowledgement functions as
`daemon/ingest.py`'s `_create`, but under the ticket number the web reserved and with the status link it
already handed out. A crash at any point is retried from the ledger and the unique keys, as for email.
"""

from __future__ import annotations

import datetime as dt
import logging

from mongoengine import NotUniqueError
from pymongo.errors import ConnectionFailure

from config import Settings
from daemon import store
from daemon.acknowledge import flag_failed_sender_authentication, queue_acknowledgement
from daemon.ingest import ingest_parsed, ledger_entry, parse_or_quarantine
from daemon.outbox import deliver_claimed
from daemon.outcomes import Created, Duplicate, Outcome
from daemon.parse import ParsedEmail
from models import MessageLedger, Ticket, utcnow
from models.claims import claim, finish, make_owner_id
from models.links import StatusLink
from models.submissions import MAX_INGEST_ATTEMPTS, WebSubmission

logger = logging.getLogger(__name__)
LEASE_SECONDS = 120
RETRY_SECONDS = 5  # times the attempt number, after a failure


def ingest_web_submissions(settings: Settings, limit: int = 50) -> int:
    """One pass: ingest up to `limit` ready submissions, oldest first, each under its own claim."""
    owner = make_owner_id()
    done = 0
    while done < limit:
        due = {"state": "ready", "ready_at": {"$lte": utcnow()}}
        record = claim(WebSubmission, due, owner, LEASE_SECONDS, inc={"attempts": 1}, sort=[("ready_at", 1)])
        if record is None:
            break
        try:
            outcome = ingest_submission(record, settings)
        except ConnectionFailure:
            finish(WebSubmission, record.key, owner)  # the database went away: it stays ready for later
            raise
        except Exception as exc:  # one bad submission never blocks the ones behind it
            logger.exception("web submission %s failed (attempt %s)", record.key[:8], record.attempts)
            retry = {"ready_at": utcnow() + dt.timedelta(seconds=RETRY_SECONDS * record.attempts)}
            failed = {"state": "failed"} if record.attempts >= MAX_INGEST_ATTEMPTS else retry
            error = f"{type(exc).__name__}: {exc}"[:500]
            finish(WebSubmission, record.key, owner, set_fields={"last_error": error, **failed})
            continue
        finish(
            WebSubmission,
            record.key,
            owner,
            set_fields={"state": "ingested", "ingested_at": utcnow(), "outcome": outcome.describe()[:500]},
        )
        done += 1
    return done


def ingest_submission(record: WebSubmission, settings: Settings) -> Outcome:
    """Ingest one submission's message; its outcome."""
    parsed = parse_or_quarantine(record.raw, settings, source=f"web:{record.source}")
    if not isinstance(parsed, ParsedEmail):
        return parsed
    if record.kind == "ticket" and record.ticket_number:
        return _create_reserved(record, parsed, settings)
    # a portal reply: threaded, reopened and its assignee notified exactly as an emailed reply (daemon/replies.py)
    return ingest_parsed(parsed, record.raw, settings, source=f"web:{record.source}")


def _create_reserved(record: WebSubmission, parsed: ParsedEmail, settings: Settings) -> Outcome:
    """`daemon/ingest.py`'s `_create`, with the reserved number and the pre-issued status link."""
    entry = MessageLedger.lookup(parsed.message_id)
    if entry is not None:
        return Duplicate(entry.ticket_number)
    requester = store.get_or_create_requester(parsed.from_address, parsed.from_name)
    ticket, existed = store.create_ticket(parsed, settings, record.ticket_number, requester)
    if record.status_key:
        _store_status_link(record.status_key, ticket, settings)
    flag_failed_sender_authentication(ticket, parsed, settings)
    ack = queue_acknowledgement(ticket, parsed, settings, retry=existed)
    created = Created(ticket.number, acknowledged=ack is not None, ack_id=str(ack.id) if ack else None, ack=ack)
    try:
        ledger_entry(parsed, created, "created", ticket).save(force_insert=True)
    except NotUniqueError:
        pass
    if ack is not None:
        deliver_claimed([ack], settings)
    return created


def _store_status_link(key: str, ticket: Ticket, settings: Settings) -> None:
    """The status link the web returned before the ticket existed (its token's hash), now pointing at it."""
    now = utcnow()
    try:
        StatusLink(
            key=key,
            ticket_id=ticket.id,
            ticket_number=ticket.number,
            created_at=now,
            expires_at=now + dt.timedelta(days=settings.status_link_days),
        ).save(force_insert=True)
    except NotUniqueError:  # a retry after a crash: stored already
        pass
