"""Tickets and their thread of messages."""

from __future__ import annotations

import datetime as dt

from mongoengine import (
    BooleanField,
    DateTimeField,
    DictField,
    Document,
    EmbeddedDocument,
    EmbeddedDocumentField,
    EmbeddedDocumentListField,
    FileField,
    IntField,
    ListField,
    ObjectIdField,
    ReferenceField,
    StringField,
)
from pymongo import ReturnDocument

from models.base import retry_on_conflict, utcnow
from models.claims import LeaseFields
from models.users import User

STATUSES = ("new", "open", "pending", "escalated", "resolved", "closed")
OPEN_STATUSES = ("new", "open", "pending", "escalated")
PRIORITIES = ("low", "medium", "high", "urgent")
TRIAGE_STATES = ("pending", "running", "done", "review", "failed")
MESSAGE_KINDS = ("inbound", "outbound", "note", "event")
EVENT_KINDS = ("status", "assign", "escalate", "deescalate", "handback", "triage")
COUNTERS = "counters"  # `_id` "ticket_number" -> {"value": the last number handed out}
TICKET_COUNTER = "ticket_number"
TRIAGE_LEASE = LeaseFields(owner="triage.claimed_by", until="triage.lease_until")
SLA_LEASE = LeaseFields(owner="sla_claimed_by", until="sla_lease_until")


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
    generation = IntField(default=0)  # bumped by a re-triage request: a worker of an older one loses its claim
    injection_signals = ListField(StringField())  # which instruction-like patterns the email matched


class AttachmentRef(EmbeddedDocument):
    filename = StringField(default="attachment")
    content_type = StringField(default="application/octet-stream")
    size = IntField(default=0)
    content_id = StringField()
    inline = BooleanField(default=False)
    file = FileField(collection_name="attachments")
    skipped_reason = StringField()  # set when not stored (e.g. over the size limit)


class Ticket(Document):
    number = IntField(required=True, unique=True)
    subject = StringField(default="", max_length=998)
    status = StringField(choices=STATUSES, default="new")
    priority = StringField(choices=PRIORITIES, default="medium")
    category = StringField(max_length=64)
    required_skills = ListField(StringField(max_length=64))
    language = StringField(max_length=16)
    summary = StringField(default="")
    helpful_notes = StringField(default="")
    facts = DictField()  # triage notes: kind ("order_numbers", "error_codes", ...) -> values found in the email
    similar_tickets = ListField(DictField())  # triage notes: {number, similarity, subject, status, category, reply}

    requester = ReferenceField(User)
    requester_email = StringField(required=True)
    participants = ListField(StringField())  # lower-cased addresses allowed to thread by [#N]
    assignee = ReferenceField(User)
    assigned_at = DateTimeField()
    routing_reason = StringField(default="")
    handed_back_by = ObjectIdField()  # who last handed it back to routing: routing passes them over

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
    last_reply_at = DateTimeField()  # our last reply; a later `last_message_at` means the customer replied
    sla_due_at = DateTimeField()
    sla_breached = BooleanField(default=False)
    resolved_at = DateTimeField()
    sla_claimed_by = StringField()  # the SLA job escalating it (models/claims.py)
    sla_lease_until = DateTimeField()
    ack_message_id = StringField()  # the acknowledgement's random Message-ID: set once, by a conditional update
    related_to = ListField(IntField())  # "possibly related to #N": an unauthorised reply into that ticket's thread
    security_flags = ListField(StringField())  # why a person must review it first (e.g. the sender failed DMARC)
    # the support address it came in on (models/mailboxes.py; "" = the settings' mailbox or the web) and that
    # mailbox's defaults when it arrived: triage keeps them when it is not confident (triage/service.py)
    mailbox = StringField(default="")
    mailbox_category = StringField()
    mailbox_skills = ListField(StringField(max_length=64), default=None)

    meta = {
        "collection": "tickets",
        "indexes": [
            # Every index is written with each new ticket and each change to one, and costs about as much as the
            # document itself (docs/db-compat.md): only what a query needs, and partial where the state is rare.
            "-created_at",  # the dashboard's tickets per day; Flask-Admin's sort by creation
            ("assignee", "status"),
            {  # due triage: only tickets waiting for it (a full compound index read every triaged ticket whose
                # next_attempt_at had passed: 130 ms at 100,000 tickets for a claim that found nothing, 4.5 ms so)
                "fields": ["triage.state", "triage.next_attempt_at"],
                "partialFilterExpression": {"triage.state": "pending"},
                "name": "triage_due_pending",
            },
            {  # expired triage claims: only tickets being triaged
                "fields": ["triage.state", "triage.lease_until"],
                "partialFilterExpression": {"triage.state": "running"},
                "name": "triage_lease_running",
            },
            ("status", "sla_due_at"),
            {  # the queue's "overdue" filter: few tickets are breached
                "fields": ["sla_breached", "status"],
                "partialFilterExpression": {"sla_breached": True},
                "name": "sla_breached_status_true",
            },
            ("status", "-updated_at"),
            {  # the offline model's training set: only tickets a moderator corrected (a few in a thousand)
                "fields": ["triage.human_fields"],
                "partialFilterExpression": {"triage.human_fields.0": {"$exists": True}},
                "name": "human_fields_set",
            },
            "category",
            "priority",
            # needed by webadmin (queue, API, Flask-Admin, dashboard):
            ("status", "-number"),
            ("assignee", "-number"),
            {  # who may take an unassigned ticket (visibility, the queue's "unassigned"): a multikey index, the
                # costliest to rewrite, holding only the tickets nobody has yet (a partial filter on null, as
                # MongoDB allows with `$eq`; each query that reads it says `assignee: None`)
                "fields": ["required_skills", "-number"],
                "partialFilterExpression": {"assignee": None},
                "name": "skills_unassigned",
            },
            ("requester_email", "-number"),
            {  # the escalation list and the "Escalated" filter
                "fields": ["escalated", "-escalated_at"],
                "partialFilterExpression": {"escalated": True},
                "name": "escalated_at_true",
            },
            ("triage.state", "number"),
            {"fields": ["triage.completed_at"], "sparse": True, "name": "triage_completed_at_sparse"},
            {"fields": ["$subject", "$summary"], "default_language": "english", "name": "ticket_text"},
        ],
    }

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def __str__(self) -> str:
        return f"#{self.number} {self.subject}"


class TicketMessage(Document):
    """One entry in a ticket's thread: an email in or out, an internal note, or an event."""

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
    event = StringField(choices=EVENT_KINDS)  # for kind "event": what happened (the timeline's label)
    reason = StringField()  # for kind "event": why, as the person gave it
    notice_message_id = StringField()  # for a customer's email: its assignee notification's id, chosen once

    meta = {"collection": "ticket_messages", "indexes": [("ticket", "created_at"), "ticket_number"]}


def next_ticket_number() -> int:
    """Allocate the next human ticket number (1, 2, 3, ...): an atomic `$inc` on the counter document."""
    return next_ticket_numbers(1)[0]


def next_ticket_numbers(count: int) -> list[int]:
    """`count` consecutive new ticket numbers from one `$inc` (bulk intake)."""
    if count <= 0:
        return []
    counters = Ticket._get_db()[COUNTERS]
    found = retry_on_conflict(
        lambda: counters.find_one_and_update(
            {"_id": TICKET_COUNTER}, {"$inc": {"value": count}}, upsert=True, return_document=ReturnDocument.AFTER
        )
    )
    last = int(found["value"])
    return list(range(last - count + 1, last + 1))


def highest_ticket_number() -> int:
    """The last ticket number handed out (the counter document, by `_id`); 0 before the first ticket."""
    found = Ticket._get_db()[COUNTERS].find_one({"_id": TICKET_COUNTER}, {"value": 1})
    return int(found["value"]) if found else 0


def ensure_ticket_counter() -> None:
    """Create the counter (start-up), never below the highest ticket number in use.

    Only numbers above the counter are looked at (normally none: an empty range of the unique index); DocumentDB
    sorts every row a query matches, so "the highest number of all" took 0.35 s at 100,000 tickets."""
    counters = Ticket._get_db()[COUNTERS]
    current = counters.find_one({"_id": TICKET_COUNTER})
    floor = int(current["value"]) if current is not None else 0
    highest = Ticket.objects(number__gt=floor).order_by("-number").only("number").first()
    if current is not None and highest is None:
        return
    value = max(floor, highest.number if highest is not None else 0)
    retry_on_conflict(lambda: counters.update_one({"_id": TICKET_COUNTER}, {"$max": {"value": value}}, upsert=True))


def claimed_triage(owner: str, now: dt.datetime, seconds: float) -> TriageState:
    """A new ticket's triage state when it is inserted already claimed by `owner` (its first attempt, as the
    triage claim would set it: triage.queue.claim_due), for the daemon's in-memory hand-over (daemon/handoff.py)."""
    return TriageState(
        state="running",
        attempts=1,
        next_attempt_at=now,
        started_at=now,
        claimed_by=owner,
        lease_until=now + dt.timedelta(seconds=seconds),
    )


def sla_due(created_at: dt.datetime, priority: str, sla_hours: dict[str, float]) -> dt.datetime:
    return created_at + dt.timedelta(hours=sla_hours.get(priority, 24.0))
