"""Tickets and their thread of messages."""

from __future__ import annotations

import datetime as dt

from mongoengine import (
    BooleanField,
    DateTimeField,
    DictField,
    EmbeddedDocument,
    EmbeddedDocumentField,
    EmbeddedDocumentListField,
    FileField,
    IntField,
    ListField,
    ReferenceField,
    StringField,
)
from pymongo.errors import DuplicateKeyError

from models.base import utcnow
from models.journal import Journaled
from models.users import User

STATUSES = ("new", "open", "pending", "escalated", "resolved", "closed")
OPEN_STATUSES = ("new", "open", "pending", "escalated")
PRIORITIES = ("low", "medium", "high", "urgent")
TRIAGE_STATES = ("pending", "running", "done", "review", "failed")
MESSAGE_KINDS = ("inbound", "outbound", "note", "event")


class TriageState(EmbeddedDocument):
    """Where a ticket is in the durable triage queue, and what triage concluded."""

    state = StringField(choices=TRIAGE_STATES, default="pending")
    attempts = IntField(default=0)
    next_attempt_at = DateTimeField(default=utcnow)
    lease_until = DateTimeField()
    claimed_by = StringField()
    last_error = StringField()
    provider = StringField()
    confidence = DictField()  # field name ("category", "priority", ...) -> 0..1
    injection_suspected = BooleanField(default=False)
    review_reason = StringField()
    tokens_used = IntField(default=0)
    started_at = DateTimeField()
    completed_at = DateTimeField()
    human_fields = ListField(StringField())  # fields a human set: training labels for the offline model
    generation = IntField(default=0)  # bumped by a re-triage request; part of the unique claim id
    injection_signals = ListField(StringField())  # which instruction-like patterns the email matched


class AttachmentRef(EmbeddedDocument):
    filename = StringField(default="attachment")
    content_type = StringField(default="application/octet-stream")
    size = IntField(default=0)
    content_id = StringField()
    inline = BooleanField(default=False)
    file = FileField(collection_name="attachments")
    skipped_reason = StringField()  # set when not stored (e.g. over the size limit)


class Ticket(Journaled):
    number = IntField(required=True, unique=True)
    subject = StringField(default="", max_length=998)
    status = StringField(choices=STATUSES, default="new")
    priority = StringField(choices=PRIORITIES, default="medium")
    category = StringField(max_length=64)
    required_skills = ListField(StringField(max_length=64))
    language = StringField(max_length=16)
    summary = StringField(default="")
    helpful_notes = StringField(default="")

    requester = ReferenceField(User)
    requester_email = StringField(required=True)
    participants = ListField(StringField())  # lower-cased addresses allowed to thread by [#N]
    assignee = ReferenceField(User)
    assigned_at = DateTimeField()
    routing_reason = StringField(default="")

    escalated = BooleanField(default=False)
    escalation_reason = StringField()
    escalated_at = DateTimeField()

    triage = EmbeddedDocumentField(TriageState, default=TriageState)

    source_message_id = StringField(required=True, unique=True)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)
    last_message_at = DateTimeField(default=utcnow)
    message_count = IntField(default=0)
    first_response_at = DateTimeField()
    sla_due_at = DateTimeField()
    sla_breached = BooleanField(default=False)
    resolved_at = DateTimeField()

    meta = {
        "collection": "tickets",
        "indexes": [
            "-created_at",
            ("status", "-created_at"),
            ("assignee", "status"),
            ("requester", "-created_at"),
            ("triage.state", "triage.next_attempt_at"),
            ("status", "sla_due_at"),
            "required_skills",
            "category",
            "priority",
            # needed by webadmin (queue, API, Flask-Admin, dashboard):
            ("status", "-number"),
            ("assignee", "-number"),
            ("required_skills", "-number"),
            ("requester_email", "-number"),
            ("escalated", "-escalated_at"),
            ("triage.state", "number"),
            "triage.completed_at",
            {"fields": ["$subject", "$summary"], "default_language": "english", "name": "ticket_text"},
        ],
    }

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def __str__(self) -> str:
        return f"#{self.number} {self.subject}"


class TicketMessage(Journaled):
    """One entry in a ticket's thread: an email in or out, an internal note, or an event."""

    journal_field = "m"

    ticket = ReferenceField(Ticket, required=True)
    ticket_number = IntField(required=True)
    kind = StringField(choices=MESSAGE_KINDS, required=True)
    public = BooleanField(default=True)  # notes and events are internal
    message_id = StringField(required=True, unique=True)
    in_reply_to = StringField()
    references = ListField(StringField())
    author = ReferenceField(User)
    from_address = StringField(default="")
    from_name = StringField(default="")
    to = ListField(StringField())
    cc = ListField(StringField())
    subject = StringField(default="")
    sent_at = DateTimeField()
    text = StringField(default="")
    new_text = StringField(default="")  # quotes and signature stripped
    html = StringField(default="")  # already sanitised
    attachments = EmbeddedDocumentListField(AttachmentRef)
    auto_submitted = BooleanField(default=False)
    created_at = DateTimeField(default=utcnow)

    meta = {"collection": "ticket_messages", "indexes": [("ticket", "created_at"), "ticket_number"]}


def next_ticket_number() -> int:
    """Allocate the next human ticket number (1, 2, 3, ...), distinct even under concurrency.

    FerretDB's findAndModify `$inc` is not atomic (two callers can read the same value; see
    docs/db-compat.md), so the number is claimed by inserting it as an `_id`, which the storage
    enforces as unique; a counter document is only a hint where to start.
    """
    database = Ticket._get_db()
    claims, counters = database["ticket_number_claims"], database["counters"]
    hint = counters.find_one({"_id": "ticket_number"}) or {}
    candidate = int(hint.get("value", 0)) + 1
    while True:
        try:
            claims.insert_one({"_id": candidate, "at": utcnow()})
            break
        except DuplicateKeyError:
            candidate += 1
    try:
        counters.update_one({"_id": "ticket_number"}, {"$max": {"value": candidate}}, upsert=True)
    except DuplicateKeyError:  # a concurrent first upsert won; the hint is advisory anyway
        pass
    return candidate


def sla_due(created_at: dt.datetime, priority: str, sla_hours: dict[str, float]) -> dt.datetime:
    return created_at + dt.timedelta(hours=sla_hours.get(priority, 24.0))
