"""Connection handling and helpers shared by all documents."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import TypeVar

import mongoengine
from pymongo.errors import DuplicateKeyError, OperationFailure
from pymongo.uri_parser import parse_uri

T = TypeVar("T")
CONFLICT_RETRIES = 8


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


def ensure_all_indexes() -> None:
    """Create every index declared in `meta` and the ticket-number counter (idempotent; run at start-up).

    Reads no collection in full: start-up time does not grow with the number of tickets.
    """
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
    from models.tickets import ensure_ticket_counter

    for document in (
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
    ):
        # the daemon, gunicorn and run_web.py may start together: concurrent index builds can deadlock
        retry_on_conflict(document.ensure_indexes, attempts=20)
    # An older database has a unique index on RevokedToken's former `jti` field, which every new
    # (field-less) row would break.
    revoked = RevokedToken._get_collection()
    if "jti_1" in revoked.index_information():
        revoked.drop_index("jti_1")
    ensure_ticket_counter()
