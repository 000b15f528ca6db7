"""An in-memory row per ticket, kept current by the change journal (models/journal.py).

On the embedded FerretDB every query but `_id` equality decodes the whole collection, about 0.2 ms per
ticket: listing 10,000 tickets took 3-4 s, and a daemon job that looked for due work every 2 s kept a
core busy. Each web process (for its queue) and the daemon (for the triage queue, moderators' open load
and SLA deadlines) therefore holds a small row per ticket and the ids of each thread's
messages. Before each use it reads the journal entries written since (two `_id` lookups when nothing
changed) and re-reads the tickets and messages they name by `_id`. A full re-read runs at first use,
when the journal's epoch changes (the database was emptied or replaced), and in the background every
`TICKET_INDEX_REBUILD_SECONDS`, so an entry lost to a crash heals.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from bson import ObjectId
from mongoengine.connection import get_db

from models import User, journal

logger = logging.getLogger(__name__)

TICKET_FIELDS = {
    "number": 1,
    "subject": 1,
    "status": 1,
    "priority": 1,
    "category": 1,
    "required_skills": 1,
    "requester_email": 1,
    "assignee": 1,
    "escalated": 1,
    "escalated_at": 1,
    "sla_breached": 1,
    "sla_due_at": 1,
    "created_at": 1,
    "updated_at": 1,
    "first_response_at": 1,
    "triage.state": 1,
    "triage.next_attempt_at": 1,
    "triage.lease_until": 1,
    "triage.completed_at": 1,
    "triage.generation": 1,
}
MESSAGE_FIELDS = {"ticket": 1, "created_at": 1}
OUTBOX_FIELDS = {"state": 1, "next_attempt_at": 1, "lease_until": 1}
OUTBOX_TRACKED = ("queued", "sending", "failed")  # sent emails, nearly all of them, are not kept
FAR_PAST = dt.datetime(1970, 1, 1)
USER_CACHE_SECONDS = 30.0


@dataclass(frozen=True)
class TicketRow:
    """What the queue needs of one ticket. `assignee` is filled per page with the assignee's User."""

    id: ObjectId
    number: int
    subject: str
    status: str
    priority: str
    category: str | None
    required_skills: frozenset[str]
    requester_email: str
    assignee_id: ObjectId | None
    escalated: bool
    sla_breached: bool
    sla_due_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime | None
    triage_state: str
    first_response_at: dt.datetime | None = None
    triage_next_attempt_at: dt.datetime | None = None
    triage_lease_until: dt.datetime | None = None
    triage_completed_at: dt.datetime | None = None
    triage_generation: int = 0
    escalated_at: dt.datetime | None = None
    search_text: str = field(repr=False, default="")  # lower-cased subject and requester
    assignee: Any = None

    @classmethod
    def from_document(cls, doc: dict) -> TicketRow:
        subject = doc.get("subject") or ""
        requester = doc.get("requester_email") or ""
        triage = doc.get("triage") or {}
        return cls(
            id=doc["_id"],
            number=int(doc.get("number") or 0),
            subject=subject,
            status=doc.get("status") or "new",
            priority=doc.get("priority") or "medium",
            category=doc.get("category"),
            required_skills=frozenset(doc.get("required_skills") or ()),
            requester_email=requester,
            assignee_id=doc.get("assignee"),
            escalated=bool(doc.get("escalated")),
            sla_breached=bool(doc.get("sla_breached")),
            sla_due_at=doc.get("sla_due_at"),
            created_at=doc.get("created_at") or FAR_PAST,
            updated_at=doc.get("updated_at"),
            triage_state=triage.get("state") or "pending",
            first_response_at=doc.get("first_response_at"),
            triage_next_attempt_at=triage.get("next_attempt_at"),
            triage_lease_until=triage.get("lease_until"),
            triage_completed_at=triage.get("completed_at"),
            triage_generation=int(triage.get("generation") or 0),
            escalated_at=doc.get("escalated_at"),
            search_text=f"{subject.lower()}\n{requester.lower()}",
        )


@dataclass(frozen=True)
class OutboxRow:
    """An outbound email that is not sent yet (queued, being sent, or failed for good)."""

    id: ObjectId
    state: str
    next_attempt_at: dt.datetime | None
    lease_until: dt.datetime | None


class _Snapshot:
    """One consistent copy of the index; replaced whole by a rebuild."""

    def __init__(self) -> None:
        self.seq = 0
        self.epoch = ""
        self.rows: dict[ObjectId, TicketRow] = {}
        self.by_number: dict[int, ObjectId] = {}
        self.threads: dict[ObjectId, dict[ObjectId, dt.datetime]] = {}  # ticket -> message -> created_at
        self.message_owner: dict[ObjectId, ObjectId] = {}
        self.outbox: dict[ObjectId, OutboxRow] = {}
        self._ordered: list[TicketRow] | None = None

    def put_ticket(self, doc: dict) -> None:
        row = TicketRow.from_document(doc)
        old = self.rows.get(row.id)
        if old is not None and self.by_number.get(old.number) == old.id:
            del self.by_number[old.number]
        self.rows[row.id] = row
        self.by_number[row.number] = row.id
        self._ordered = None

    def drop_ticket(self, ticket_id: ObjectId) -> None:
        old = self.rows.pop(ticket_id, None)
        if old is not None and self.by_number.get(old.number) == ticket_id:
            del self.by_number[old.number]
        self._ordered = None

    def put_message(self, doc: dict) -> None:
        self.drop_message(doc["_id"])
        ticket_id = doc.get("ticket")
        if ticket_id is None:
            return
        self.threads.setdefault(ticket_id, {})[doc["_id"]] = doc.get("created_at") or FAR_PAST
        self.message_owner[doc["_id"]] = ticket_id

    def drop_message(self, message_id: ObjectId) -> None:
        owner = self.message_owner.pop(message_id, None)
        if owner is not None:
            self.threads.get(owner, {}).pop(message_id, None)

    def put_outbox(self, doc: dict) -> None:
        if doc.get("state") in OUTBOX_TRACKED:
            self.outbox[doc["_id"]] = OutboxRow(
                doc["_id"], doc["state"], doc.get("next_attempt_at"), doc.get("lease_until")
            )
        else:
            self.outbox.pop(doc["_id"], None)

    def drop_outbox(self, email_id: ObjectId) -> None:
        self.outbox.pop(email_id, None)

    def ordered(self) -> list[TicketRow]:
        """Every row, newest first."""
        if self._ordered is None:
            self._ordered = sorted(self.rows.values(), key=lambda r: (r.created_at, r.number), reverse=True)
        return self._ordered


class TicketIndex:
    """Thread-safe; one per web app, one per daemon process (`shared`)."""

    def __init__(self, rebuild_seconds: float, *, track_messages: bool = True) -> None:
        self.rebuild_seconds = rebuild_seconds
        self.track_messages = track_messages
        self._snapshot: _Snapshot | None = None
        self._built_at = 0.0
        self._lock = threading.RLock()
        self._rebuilding = False
        self._users: dict[ObjectId, tuple[float, User | None]] = {}

    # --- reading -------------------------------------------------------------------------------------

    def rows(self) -> list[TicketRow]:
        """Every ticket, newest first, current as of this call."""
        with self._lock:
            return self._current().ordered()

    def find(self, number: int) -> TicketRow | None:
        with self._lock:
            snapshot = self._current()
            ticket_id = snapshot.by_number.get(number)
            return snapshot.rows.get(ticket_id) if ticket_id is not None else None

    def outbox_rows(self) -> list[OutboxRow]:
        """Outbound emails not sent yet (queued, being sent, failed)."""
        with self._lock:
            return list(self._current().outbox.values())

    def message_ids(self, ticket_id: ObjectId) -> list[ObjectId]:
        """The ticket's message ids, oldest first."""
        with self._lock:
            thread = self._current().threads.get(ticket_id, {})
            return [m for m, _ in sorted(thread.items(), key=lambda item: (item[1], item[0]))]

    def user(self, user_id: ObjectId) -> User | None:
        """A user by id, cached for USER_CACHE_SECONDS: the queue shows assignees' addresses, and each
        lookup is a round trip of a few milliseconds."""
        now = time.monotonic()
        cached = self._users.get(user_id)
        if cached is None or cached[0] < now:
            cached = (now + USER_CACHE_SECONDS, User.objects(id=user_id).first())
            self._users[user_id] = cached
        return cached[1]

    @property
    def ready(self) -> bool:
        return self._snapshot is not None

    # --- keeping current -----------------------------------------------------------------------------

    def _current(self) -> _Snapshot:
        if self._snapshot is not None and self._snapshot.epoch != journal.epoch():
            logger.info("change journal epoch changed (database emptied or replaced): rebuilding the ticket index")
            self._snapshot = None
        if self._snapshot is None:
            self._snapshot = self._build()
            self._built_at = time.monotonic()
        else:
            self._catch_up(self._snapshot)
            if time.monotonic() - self._built_at > self.rebuild_seconds and not self._rebuilding:
                self.rebuild_in_background()
        return self._snapshot

    def warm_in_background(self) -> None:
        """Build now in a thread, so a fresh web process does not make its first visitor wait."""
        threading.Thread(target=self.rows, name="ticket-index-warm", daemon=True).start()

    def rebuild_in_background(self) -> None:
        self._rebuilding = True

        def work() -> None:
            try:
                snapshot = self._build()
                with self._lock:
                    self._catch_up(snapshot)
                    self._snapshot, self._built_at = snapshot, time.monotonic()
            except Exception:  # the old snapshot keeps serving; the next interval tries again
                logger.exception("ticket index rebuild failed")
                self._built_at = time.monotonic()
            finally:
                self._rebuilding = False

        threading.Thread(target=work, name="ticket-index-rebuild", daemon=True).start()

    def _build(self) -> _Snapshot:
        started = time.perf_counter()
        database = get_db()
        snapshot = _Snapshot()
        # Take the journal position first: writes during the scans are replayed afterwards.
        snapshot.epoch, snapshot.seq = journal.epoch(), journal.head()
        for doc in database["tickets"].find({}, TICKET_FIELDS):
            snapshot.put_ticket(doc)
        if self.track_messages:
            for doc in database["ticket_messages"].find({}, MESSAGE_FIELDS):
                snapshot.put_message(doc)
        for doc in database["outbox"].find({"state": {"$in": list(OUTBOX_TRACKED)}}, OUTBOX_FIELDS):
            snapshot.put_outbox(doc)
        self._catch_up(snapshot)
        logger.info(
            "ticket index built: %d tickets, %d messages in %.2fs",
            len(snapshot.rows),
            len(snapshot.message_owner),
            time.perf_counter() - started,
        )
        return snapshot

    def _catch_up(self, snapshot: _Snapshot) -> None:
        entries = journal.read_after(snapshot.seq)
        if not entries:
            return
        database = get_db()
        tickets: dict[Any, None] = {}
        messages: dict[Any, None] = {}
        outbox: dict[Any, None] = {}
        for _seq, entry in entries:
            tickets.update(dict.fromkeys(entry.get("t") or ()))
            outbox.update(dict.fromkeys(entry.get("o") or ()))
            if self.track_messages:
                messages.update(dict.fromkeys(entry.get("m") or ()))
        for collection, ids, fields, put, drop in (
            ("tickets", tickets, TICKET_FIELDS, snapshot.put_ticket, snapshot.drop_ticket),
            ("ticket_messages", messages, MESSAGE_FIELDS, snapshot.put_message, snapshot.drop_message),
            ("outbox", outbox, OUTBOX_FIELDS, snapshot.put_outbox, snapshot.drop_outbox),
        ):
            for written_id in ids:  # re-read by `_id`: gone means deleted
                doc = database[collection].find_one({"_id": written_id}, fields)
                if doc is None:
                    drop(written_id)
                else:
                    put(doc)
        snapshot.seq = entries[-1][0]


_shared: dict[str, TicketIndex] = {}
_shared_lock = threading.Lock()


def shared(rebuild_seconds: float = 600.0) -> TicketIndex:
    """This process's index of the connected database (the daemon's; each web app has its own)."""
    name = get_db().name
    with _shared_lock:
        if name not in _shared:
            _shared[name] = TicketIndex(rebuild_seconds)
        return _shared[name]
