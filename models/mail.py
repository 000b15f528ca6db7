"""What ingestion needs: the mailbox cursor and lease, the Message-ID ledger, quarantine."""

from __future__ import annotations

from mongoengine import DateTimeField, Document, FileField, IntField, StringField

from models.base import utcnow

LEDGER_OUTCOMES = ("created", "threaded", "ignored", "bounce", "quarantined", "outbound")


class MessageLedger(Document):
    """Every Message-ID we have processed or sent, and the ticket it belongs to.

    The unique index makes ingestion idempotent and lets replies thread by In-Reply-To/References.
    """

    message_id = StringField(required=True, unique=True)
    ticket_number = IntField()
    direction = StringField(choices=("in", "out"), default="in")
    outcome = StringField(choices=LEDGER_OUTCOMES, required=True)
    detail = StringField(default="")
    created_at = DateTimeField(default=utcnow)

    meta = {"collection": "message_ledger", "indexes": ["ticket_number"]}


class MailboxCursor(Document):
    """How far we have read a folder: the last UID seen under one UIDVALIDITY."""

    mailbox = StringField(required=True, unique=True)  # "user@host:port/FOLDER"
    uidvalidity = IntField()
    last_uid = IntField(default=0)
    last_poll_at = DateTimeField()
    last_error = StringField()
    updated_at = DateTimeField(default=utcnow)

    meta = {"collection": "mailbox_cursors"}


class MailboxLease(Document):
    """Only the holder of an unexpired lease reads a mailbox; other daemon instances wait."""

    name = StringField(required=True, unique=True)
    holder = StringField(required=True)
    expires_at = DateTimeField(required=True)

    meta = {"collection": "mailbox_leases"}


class QuarantinedEmail(Document):
    """A message we could not ingest, kept with its reason and raw bytes until re-ingested."""

    reason = StringField(required=True)
    raw = FileField(collection_name="quarantine")
    size = IntField(default=0)
    message_id = StringField(default="")
    sender = StringField(default="")
    subject = StringField(default="")
    mailbox = StringField(default="")
    uid = IntField()
    received_at = DateTimeField(default=utcnow)
    reingested_at = DateTimeField()
    reingest_result = StringField()

    meta = {"collection": "quarantine", "indexes": ["-received_at", "message_id"]}
