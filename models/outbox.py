"""Outbound email queue: every message is stored first, then sent (by the daemon's outbox job)."""

from __future__ import annotations

import datetime as dt
import uuid

from mongoengine import (
    DateTimeField,
    EmbeddedDocument,
    EmbeddedDocumentListField,
    IntField,
    ListField,
    NotUniqueError,
    StringField,
)

from models.base import utcnow
from models.journal import Journaled
from models.mail import MessageLedger

OUTBOX_KINDS = ("ack", "reply", "notification")
OUTBOX_STATES = ("queued", "sending", "sent", "failed")


class Header(EmbeddedDocument):
    name = StringField(required=True)
    value = StringField(required=True)


class OutboundEmail(Journaled):
    journal_field = "o"

    message_id = StringField(required=True, unique=True)
    kind = StringField(choices=OUTBOX_KINDS, required=True)
    ticket_number = IntField()
    to = ListField(StringField(), required=True)
    subject = StringField(required=True)
    text = StringField(default="")
    html = StringField(default="")
    in_reply_to = StringField()
    references = ListField(StringField())
    headers = EmbeddedDocumentListField(Header)
    state = StringField(choices=OUTBOX_STATES, default="queued")
    attempts = IntField(default=0)
    next_attempt_at = DateTimeField(default=utcnow)
    lease_until = DateTimeField()
    batch = StringField()  # emails claimed and sent together (bulk acknowledgements) share this tag
    last_error = StringField()
    created_at = DateTimeField(default=utcnow)
    sent_at = DateTimeField()

    meta = {"collection": "outbox", "indexes": [("state", "next_attempt_at"), "ticket_number", "-created_at"]}


def make_message_id(domain: str) -> str:
    return f"<{uuid.uuid4().hex}@{domain}>"


def queue_email(
    *,
    kind: str,
    to: list[str],
    subject: str,
    text: str,
    domain: str,
    ticket_number: int | None = None,
    html: str = "",
    in_reply_to: str | None = None,
    references: list[str] | None = None,
    headers: dict[str, str] | None = None,
    message_id: str | None = None,
    claim_seconds: int | None = None,
) -> OutboundEmail:
    """Store an outbound email (and its Message-ID in the ledger, so replies to it thread).

    `claim_seconds`: the caller sends it itself right away; the outbox job leaves it alone that long.
    """
    email = OutboundEmail(
        message_id=message_id or make_message_id(domain),
        kind=kind,
        ticket_number=ticket_number,
        to=to,
        subject=subject,
        text=text,
        html=html,
        in_reply_to=in_reply_to,
        references=references or [],
        headers=[Header(name=k, value=v) for k, v in (headers or {}).items()],
    )
    if claim_seconds:
        email.state, email.attempts = "sending", 1
        email.lease_until = utcnow() + dt.timedelta(seconds=claim_seconds)
    email.save(force_insert=True)
    if ticket_number is not None:
        record_outbound(email.message_id, ticket_number)
    return email


def record_outbound(message_id: str, ticket_number: int) -> None:
    """Remember an outbound Message-ID so that replies to it thread into the ticket (idempotent)."""
    try:
        MessageLedger(message_id=message_id, ticket_number=ticket_number, direction="out", outcome="outbound").save(
            force_insert=True
        )
    except NotUniqueError:
        pass
