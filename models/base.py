"""Connection handling and helpers shared by all documents."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any, TypeVar

import mongoengine
from pymongo.errors import DuplicateKeyError, OperationFailure
from pymongo.uri_parser import parse_uri

T = TypeVar("T")
CONFLICT_RETRIES = 8
INDEX_NOT_FOUND = 27  # the server's error code


def utcnow() -> dt.datetime:
    """Naive UTC now, truncated to milliseconds (what BSON stores), so round trips compare equal."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def connect_db(mongo_uri: str, db_name: str | None = None) -> None:
    """Connect the default mongoengine alias; the database name comes from the URI unless given."""
    name = db_name or parse_uri(mongo_uri).get("database") or "helpdesk"
    mongoengine.disconnect()
    mongoengine.connect(db=name, host=mongo_uri, uuidRepresentation="standard", tz_aware=False)


def disconnect_db() -> None:
    mongoengine.disconnect()


def is_write_conflict(exc: BaseException) -> bool:
    """A lost race on a unique key: DuplicateKeyError, or PostgreSQL's "deadlock detected" on DocumentDB."""
    if isinstance(exc, DuplicateKeyError):
        return True
    return isinstance(exc, OperationFailure) and "deadlock" in str(exc).lower()


def retry_on_conflict(operation: Callable[[], T], attempts: int = CONFLICT_RETRIES) -> T:
    """Run `operation`, again after a lost unique-key race (e.g. two first upserts of one counter)."""
    for attempt in range(attempts):
        try:
            return operation()
        except (DuplicateKeyError, OperationFailure) as exc:
            if not is_write_conflict(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.005 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


# Indexes an older database has and no query needs any more (each costs about as much as the document itself on
# every write): collection -> index names. Partial versions of some are created under new names.
RETIRED_INDEXES = {
    "tickets": (
        "status_1_created_at_-1",
        "requester_1_created_at_-1",
        "required_skills_1",  # a prefix of the skills index
        "triage.state_1_triage.lease_until_1",
        "sla_breached_1_status_1",
        "escalated_1_escalated_at_-1",
        "triage.completed_at_1",
        "triage.state_1_triage.next_attempt_at_1",  # triage_due_pending: pending tickets only
        "triage.human_fields_1",  # human_fields_set: corrected tickets only
        "required_skills_1_number_-1",  # skills_unassigned: unassigned tickets only
    ),
    "outbox": ("state_1_next_attempt_at_1", "state_1_lease_until_1"),
    "users": ("role_1",),  # a prefix of role_1_active_1 and role_1_email_1
    "message_ledger": ("message_id_1", "ticket_number_1"),  # `_id` is the Message-ID's hash
    # RevokedToken's former `jti` field: every new (field-less) row would break its unique index
    "revoked_tokens": ("jti_1",),
}


def drop_retired_indexes(database: Any, present: dict[str, set[str]]) -> None:
    """Drop the RETIRED_INDEXES a database still has; `present`: each collection's index names (updated)."""
    for collection, names in RETIRED_INDEXES.items():
        found = present.get(collection, set())
        for name in names:
            if name in found:
                try:
                    database[collection].drop_index(name)
                except OperationFailure as exc:  # dropped meanwhile by another process starting up
                    if exc.code != INDEX_NOT_FOUND and not is_write_conflict(exc):
                        raise
                found.discard(name)


def index_name(spec: dict[str, Any]) -> str:
    """The name an index spec of mongoengine's `meta` gets on the server (pymongo's rule unless it has one)."""
    return spec.get("name") or "_".join(f"{field}_{direction}" for field, direction in spec["fields"])


def indexed_at_start_up() -> tuple[type[mongoengine.Document], ...]:
    """The documents whose indexes `ensure_all_indexes` creates."""
    from models import (
        AuditEvent,
        Category,
        MailboxCursor,
        MailboxLease,
        MessageLedger,
        OutboundEmail,
        QuarantinedEmail,
        RevokedToken,
        Skill,
        Ticket,
        TicketMessage,
        User,
    )
    from models.api_keys import ApiKey
    from models.outbox import AckRateCounter
    from models.portal_links import PortalSignInLink
    from models.submissions import WebSubmission

    return (
        User,
        Skill,
        Category,
        Ticket,
        TicketMessage,
        MessageLedger,
        MailboxCursor,
        MailboxLease,
        QuarantinedEmail,
        OutboundEmail,
        AckRateCounter,
        AuditEvent,
        RevokedToken,
        WebSubmission,
        ApiKey,
        PortalSignInLink,
    )


def leave_indexes_to_start_up() -> None:
    """Stop mongoengine from creating these documents' indexes on each process's first use of them (35
    `createIndexes` per process, ~80 ms before its first email or request): every entry point runs
    `ensure_all_indexes` at start-up instead."""
    for document in indexed_at_start_up():
        document._meta["auto_create_index"] = False


def ensure_all_indexes() -> None:
    """Create every index declared in `meta` and the ticket-number counter (idempotent; run at start-up).

    Reads no collection in full: start-up time does not grow with the number of tickets. An index is known by its
    name: one whose options change must get a new name (and the old one a place in RETIRED_INDEXES).
    """
    from models.tickets import ensure_ticket_counter

    database = mongoengine.get_db()
    documents = indexed_at_start_up()
    # one `listIndexes` per collection; a `createIndexes` only where one is missing (about 100 of them, ~4 ms each,
    # were most of the daemon's start-up on a database that had them all)
    present = {d._get_collection_name(): set(database[d._get_collection_name()].index_information()) for d in documents}
    drop_retired_indexes(database, present)  # first: a partial index may take a retired one's keys
    for document in documents:
        if {index_name(spec) for spec in document._meta["index_specs"]} <= present[document._get_collection_name()]:
            continue
        # the daemon, gunicorn and run_web.py may start together: concurrent index builds can deadlock
        retry_on_conflict(document.ensure_indexes, attempts=20)
    ensure_ticket_counter()
