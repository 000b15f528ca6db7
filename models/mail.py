"""What ingestion needs: the mailbox cursor and lease, the Message-ID ledger, quarantine."""

from __future__ import annotations

import hashlib

from mongoengine import DateTimeField, Document, FileField, IntField, ObjectIdField, StringField

from models.base import utcnow

LEDGER_OUTCOMES = ("created", "threaded", "ignored", "bounce", "quarantined", "outbound")


class MessageLedger(Document):
    """Every Message-ID we have processed or sent, and the ticket it belongs to.

    `_id`, a hash of the Message-ID (fixed length, whatever the header holds), is its only index: being unique,
    it makes ingestion idempotent, and lookups by it let replies thread by In-Reply-To/References.
    """

    key = StringField(primary_key=True)
    message_id = StringField(required=True)
    ticket_number = IntField()
    ticket_id = ObjectIdField()
    content_digest = StringField()  # tells a re-delivery from a different message reusing the Message-ID
    direction = StringField(choices=("in", "out"), default="in")
    outcome = StringField(choices=LEDGER_OUTCOMES, required=True)
    detail = StringField(default="")
    created_at = DateTimeField(default=utcnow)

    meta = {"collection": "message_ledger"}

    def clean(self) -> None:
        self.key = self.key or ledger_key(self.message_id)

    @classmethod
    def lookup(cls, message_id: str) -> MessageLedger | None:
        return cls.objects(key=ledger_key(message_id)).first()


def ledger_key(message_id: str) -> str:
    """The ledger `_id` for a Message-ID (case of the local part kept; angle brackets normalised)."""
    normalised = "<" + message_id.strip().strip("<>") + ">"
    return hashlib.sha256(normalised.encode("utf-8", "replace")).hexdigest()[:40]


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
    """Only the holder of an unexpired lease reads a mailbox; other daemon instances wait (models/claims.py)."""

    name = StringField(primary_key=True)
    claimed_by = StringField()
    lease_until = DateTimeField()

    meta = {"collection": "mailbox_lease"}


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
    reingest_requested_at = DateTimeField()  # set by the web panel; the daemon's job re-ingests and clears it
    reingested_at = DateTimeField()
    reingest_result = StringField()
    claimed_by = StringField()  # the daemon re-ingesting it (models/claims.py)
    lease_until = DateTimeField()

    meta = {"collection": "quarantine", "indexes": ["-received_at", "message_id", "reingest_requested_at"]}
