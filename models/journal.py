"""The change journal: an append-only log of which tickets and thread messages were written.

FerretDB v1.24 over SQLite answers only `_id` equality from an index; every other filter, sort or
count decodes the whole collection (docs/db-compat.md). The web panel therefore keeps its ticket list
in memory (webadmin/ticket_index.py) and stays current by following this journal with `_id` lookups
alone: entries have consecutive string ids ("000000000001", "000000000002", ...).

A writer claims the next id by inserting it (the storage enforces `_id` uniqueness) and only moves on
past an id it found taken, starting from a hint that never exceeds the last id in use, so the journal
has no gaps: when a reader finds entry N missing, no entry after N exists yet. Writes through the
`Journaled` documents (save, delete, queryset update/modify/delete/insert) record themselves; code that
inserts through the raw collection calls `record` itself.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterable
from typing import Any

from bson import ObjectId
from mongoengine import Document
from mongoengine.connection import get_db
from mongoengine.queryset import QuerySet
from pymongo.errors import DuplicateKeyError, PyMongoError

from models.base import utcnow

logger = logging.getLogger(__name__)

COLLECTION = "change_journal"
HINT_ID = "change_journal"  # in `counters`: advisory, at most the last id in use
EPOCH_ID = "change_journal_epoch"  # in `counters`
KEY_WIDTH = 12
KEEP = dt.timedelta(days=7)
KINDS = {"t": "tickets", "m": "messages", "o": "outbox"}  # entry field -> `record` argument


def key(seq: int) -> str:
    return f"{seq:0{KEY_WIDTH}d}"


def _hint() -> int:
    found = get_db()["counters"].find_one({"_id": HINT_ID}) or {}
    return int(found.get("value", 0))


def record(tickets: Iterable[Any] = (), messages: Iterable[Any] = (), outbox: Iterable[Any] = ()) -> int | None:
    """Append one entry naming the written tickets, messages and outbound emails (by `_id`); its number.

    A failure is logged, not raised: the data write it follows already happened, and readers rebuild
    from the collections periodically (TICKET_INDEX_REBUILD_SECONDS), so a lost entry heals.
    """
    ticket_ids, message_ids = list(dict.fromkeys(tickets)), list(dict.fromkeys(messages))
    outbox_ids = list(dict.fromkeys(outbox))
    if not ticket_ids and not message_ids and not outbox_ids:
        return None
    try:
        database = get_db()
        journal = database[COLLECTION]
        seq = _hint() + 1
        while True:
            try:
                journal.insert_one(
                    {"_id": key(seq), "t": ticket_ids, "m": message_ids, "o": outbox_ids, "at": utcnow()}
                )
                break
            except DuplicateKeyError:
                seq += 1
        try:
            database["counters"].update_one({"_id": HINT_ID}, {"$max": {"value": seq}}, upsert=True)
        except DuplicateKeyError:  # a concurrent first upsert won; the hint is advisory
            pass
        return seq
    except PyMongoError:
        logger.exception("could not journal writes to tickets %s / messages %s", ticket_ids[:5], message_ids[:5])
        return None


def epoch() -> str:
    """This journal's identity: created once, gone when the database is emptied or replaced (readers
    then rebuild instead of waiting for entries after a position that no longer exists)."""
    counters = get_db()["counters"]
    found = counters.find_one({"_id": EPOCH_ID})
    if found is None:
        try:
            counters.insert_one({"_id": EPOCH_ID, "value": uuid.uuid4().hex})
        except DuplicateKeyError:
            pass  # another process created it first
        found = counters.find_one({"_id": EPOCH_ID}) or {}
    return str(found.get("value", ""))


def head() -> int:
    """The last sequence number in use (0 for an empty journal)."""
    seq = _hint()
    journal = get_db()[COLLECTION]
    while journal.find_one({"_id": key(seq + 1)}, {"_id": 1}) is not None:
        seq += 1
    return seq


def read_after(seq: int, limit: int = 10_000) -> list[tuple[int, dict]]:
    """Entries after `seq`, in order, up to `limit` of them."""
    journal = get_db()[COLLECTION]
    entries: list[tuple[int, dict]] = []
    while len(entries) < limit:
        entry = journal.find_one({"_id": key(seq + 1)})
        if entry is None:
            break
        seq += 1
        entries.append((seq, entry))
    return entries


def prune(keep: dt.timedelta = KEEP) -> int:
    """Delete entries older than `keep` (the daemon runs this nightly); how many went.

    Readers are at most seconds behind the head and rebuild from the collections when idle for longer
    than TICKET_INDEX_REBUILD_SECONDS, so a week of history is far more than any reader needs.
    """
    return get_db()[COLLECTION].delete_many({"at": {"$lt": utcnow() - keep}}).deleted_count


class JournaledQuerySet(QuerySet):
    """A QuerySet whose writes record the written documents' ids in the journal."""

    def _target_ids(self) -> list[Any]:
        query = self._query
        target = query.get("_id")
        if isinstance(target, ObjectId | str):
            return [target]
        if isinstance(target, dict) and set(target) == {"$in"}:
            return list(target["$in"])
        # Any other filter: find the ids first (a scan on FerretDB, as the write itself is).
        return [d["_id"] for d in self._collection.find(query, {"_id": 1})]

    def _record(self, ids: Iterable[Any]) -> None:
        record(**{KINDS[getattr(self._document, "journal_field", "t")]: ids})

    def update(self, *args: Any, **kwargs: Any) -> Any:
        ids = self._target_ids()
        result = super().update(*args, **kwargs)
        self._record(ids)
        return result

    def modify(self, *args: Any, **kwargs: Any) -> Any:
        ids = self._target_ids()
        result = super().modify(*args, **kwargs)
        self._record(ids + ([result.pk] if result is not None else []))
        return result

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        ids = self._target_ids()
        result = super().delete(*args, **kwargs)
        self._record(ids)
        return result

    def insert(self, doc_or_docs: Any, *args: Any, **kwargs: Any) -> Any:
        result = super().insert(doc_or_docs, *args, **kwargs)
        inserted = result if isinstance(result, list) else [result]
        self._record(getattr(d, "pk", d) for d in inserted)
        return result


class Journaled(Document):
    """Base of documents whose writes the journal records; `journal_field` says which list (KINDS)."""

    meta = {"abstract": True, "queryset_class": JournaledQuerySet}
    journal_field = "t"

    def save(self, *args: Any, **kwargs: Any) -> Any:
        result = super().save(*args, **kwargs)
        record(**{KINDS[self.journal_field]: [self.pk]})
        return result
