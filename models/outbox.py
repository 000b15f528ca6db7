"""Outbound email queue: every message is stored first, then sent (by the daemon's outbox job)."""

from __future__ import annotations

import datetime as dt
import secrets

from mongoengine import (
    DateTimeField,
    Document,
    EmbeddedDocument,
    EmbeddedDocumentListField,
    IntField,
    ListField,
    NotUniqueError,
    StringField,
)
from pymongo.errors import BulkWriteError

from models.base import utcnow
from models.mail import MessageLedger, ledger_key

OUTBOX_KINDS = ("ack", "reply", "notification")
OUTBOX_STATES = ("queued", "sending", "sent", "failed")


class Header(EmbeddedDocument):
    name = StringField(required=True)
    value = StringField(required=True)


class OutboundEmail(Document):
    """One email to send. The outbox job claims due ones (models/claims.py) and records the result.

    The web queues replies and notifications here ("queued"); a failed email is retried by setting it
    back to "queued" with `next_attempt_at` now and `attempts` 0.
    """

    message_id = StringField(required=True, unique=True)
    kind = StringField(choices=OUTBOX_KINDS, required=True)
    ticket_number = IntField()
    # the support address it goes out from and through whose SMTP login (models/mailboxes.py): "" the settings'
    # mailbox; None (not stored) the one its ticket came in on, looked up when it is sent
    mailbox = StringField()
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
    claimed_by = StringField()  # the sender holding this attempt (models/claims.py)
    lease_until = DateTimeField()
    last_error = StringField()
    created_at = DateTimeField(default=utcnow)
    sent_at = DateTimeField()

    meta = {
        "collection": "outbox",
        "strict": False,  # emails stored before the claims module carry a `batch` tag: ignored
        "indexes": [
            # partial: an email leaves both when it is sent, so marking it "sent" rewrites fewer index entries
            {
                "fields": ["state", "next_attempt_at"],
                "partialFilterExpression": {"state": "queued"},
                "name": "due_queued",
            },
            {
                "fields": ["state", "lease_until"],
                "partialFilterExpression": {"state": "sending"},
                "name": "lease_sending",
            },
            "ticket_number",
            ("state", "-created_at"),
            "-created_at",
        ],
    }


class AckRateCounter(Document):
    """Acknowledgements to one sender in one clock hour: an atomic `$inc` with upsert (daemon/acknowledge.py)."""

    key = StringField(primary_key=True)  # f"{sha256(address)[:24]}:{YYYYMMDDHH}"
    count = IntField(default=0)
    expires_at = DateTimeField(required=True)

    meta = {"collection": "ack_rate", "indexes": [{"fields": ["expires_at"], "expireAfterSeconds": 0}]}


def make_message_id(domain: str) -> str:
    """A Message-ID with 192 random bits: nobody can compute the id of an email we send."""
    return f"<{secrets.token_urlsafe(24)}@{domain}>"


def build_email(
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
    claim_owner: str | None = None,
    claim_seconds: float = 120,
    mailbox: str | None = None,
) -> OutboundEmail:
    """An unsaved outbound email. `claim_owner`: stored already claimed by the caller, who sends it at once
    (the outbox job takes it over only when that claim's lease expires)."""
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
        mailbox=mailbox,
    )
    if claim_owner:
        email.state, email.attempts, email.claimed_by = "sending", 1, claim_owner
        email.lease_until = utcnow() + dt.timedelta(seconds=claim_seconds)
    return email


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
    claim_owner: str | None = None,
    claim_seconds: float = 120,
    mailbox: str | None = None,
) -> OutboundEmail:
    """Store an outbound email (and its Message-ID in the ledger, so replies to it thread); see `build_email`."""
    email = build_email(
        kind=kind,
        to=to,
        subject=subject,
        text=text,
        domain=domain,
        ticket_number=ticket_number,
        html=html,
        in_reply_to=in_reply_to,
        references=references,
        headers=headers,
        message_id=message_id,
        claim_owner=claim_owner,
        claim_seconds=claim_seconds,
        mailbox=mailbox,
    )
    email.save(force_insert=True)
    if email.ticket_number is not None:
        record_outbound(email.message_id, email.ticket_number)
    return email


def queue_emails(emails: list[OutboundEmail]) -> list[OutboundEmail]:
    """Store built emails with one bulk insert; the ones stored (a Message-ID already queued is skipped)."""
    if not emails:
        return []
    for email in emails:
        email.validate()
    documents = [email.to_mongo().to_dict() for email in emails]
    failed: set[int] = set()
    try:
        OutboundEmail._get_collection().insert_many(documents, ordered=False)
    except BulkWriteError as exc:
        failed = {error["index"] for error in exc.details.get("writeErrors", [])}
    stored = []
    for index, (email, document) in enumerate(zip(emails, documents, strict=True)):
        if index not in failed:
            email.id = document["_id"]
            stored.append(email)
    record_outbound_many([(e.message_id, e.ticket_number) for e in stored if e.ticket_number is not None])
    return stored


def record_outbound(message_id: str, ticket_number: int) -> None:
    """Remember an outbound Message-ID so that replies to it thread into the ticket (idempotent)."""
    try:
        MessageLedger(message_id=message_id, ticket_number=ticket_number, direction="out", outcome="outbound").save(
            force_insert=True
        )
    except NotUniqueError:
        pass


def record_outbound_many(entries: list[tuple[str, int]]) -> None:
    """`record_outbound` for many Message-IDs with one bulk insert."""
    if not entries:
        return
    now = utcnow()
    documents = [
        {
            "_id": ledger_key(message_id),
            "message_id": message_id,
            "ticket_number": number,
            "direction": "out",
            "outcome": "outbound",
            "detail": "",
            "created_at": now,
        }
        for message_id, number in entries
    ]
    try:
        MessageLedger._get_collection().insert_many(documents, ordered=False)
    except BulkWriteError:
        pass  # already recorded (a retry): as good


def queue_escalation_alert(
    *,
    ticket_number: int,
    subject: str,
    reason: str,
    actor: str,
    assignee: str,
    link: str,
    domain: str,
    skip: tuple[str, ...] = (),
) -> list[OutboundEmail]:
    """Email every active admin (but `skip`, told already) that ticket N was escalated: why, to whom, a link."""
    from models.users import staff_members

    text = (
        f"Ticket #{ticket_number} was escalated by {actor}.\n"
        f"Reason: {reason}\n"
        f"Now with: {assignee}\n\n"
        f"Open the ticket: {link}\n"
    )
    return [
        queue_email(
            kind="notification",
            to=[admin.email],
            subject=f"[#{ticket_number}] Escalated: {subject}"[:300],
            text=text,
            domain=domain,
            ticket_number=ticket_number,
        )
        for admin in staff_members(("admin",))
        if admin.email not in skip
    ]
