"""Connection handling and helpers shared by all documents."""

from __future__ import annotations

import datetime as dt
import re

import mongoengine
from bson.regex import Regex
from mongoengine import fields as mongo_fields
from pymongo.uri_parser import parse_uri

_original_prepare_query_value = mongo_fields.StringField.prepare_query_value


def _portable_regex(self: mongo_fields.StringField, op: str, value: object) -> object:
    """mongoengine sends `icontains` & co. as compiled patterns, which pymongo encodes with flags "iu";
    FerretDB rejects the "u" flag (docs/db-compat.md), so send a plain BSON regex with only "i"."""
    prepared = _original_prepare_query_value(self, op, value)
    if isinstance(prepared, re.Pattern):
        return Regex(prepared.pattern, "i" if prepared.flags & re.IGNORECASE else "")
    return prepared


mongo_fields.StringField.prepare_query_value = _portable_regex  # type: ignore[method-assign]


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


def ensure_all_indexes() -> None:
    """Create every index declared in `meta` (idempotent; run at start-up by both entry points)."""
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
        AuditEvent,
        RevokedToken,
    ):
        document.ensure_indexes()
    # Revoked tokens are keyed by their jti since the `_id`-only lookups of FerretDB; an older database
    # still has the unique index on the former `jti` field, which every new (field-less) row would break.
    revoked = RevokedToken._get_collection()
    if "jti_1" in revoked.index_information():
        revoked.drop_index("jti_1")
    from models.users import remember_all_keys

    remember_all_keys()
