"""Claims with leases on work records: one atomic conditional update each (modelled on rq's started-job registry).

A record is claimable when its `ready` filter matches (e.g. "pending and due") and nobody holds it, or its
holder's lease expired (the holder died). `claim` sets owner and lease expiry in the same
`find_one_and_update` that checks this, so two workers racing for one record never both win. Renewing,
releasing and completing are conditional on the owner: a worker whose lease was taken over loses its write.
The triage queue, the outbox, the SLA job, quarantine re-ingest and the mailbox lease all use it.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from mongoengine import Document
from pymongo import ReturnDocument

from models.base import utcnow

D = TypeVar("D", bound=Document)


def make_owner_id() -> str:
    """A name unique to this process and call site: host:pid:random."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class LeaseFields:
    """Where a collection keeps its claim: the owner's id and the lease expiry (dotted paths allowed)."""

    owner: str = "claimed_by"
    until: str = "lease_until"


TOP_LEVEL = LeaseFields()


def free_filter(fields: LeaseFields, now: dt.datetime) -> dict[str, Any]:
    """Nobody holds it, or its holder's lease expired."""
    return {"$or": [{fields.owner: None}, {fields.until: {"$lt": now}}]}


def claim(
    document: type[D],
    ready: Mapping[str, Any],
    owner: str,
    seconds: float,
    *,
    fields: LeaseFields = TOP_LEVEL,
    set_fields: Mapping[str, Any] | None = None,
    inc: Mapping[str, int] | None = None,
    sort: Sequence[tuple[str, int]] | None = None,
    now: dt.datetime | None = None,
) -> D | None:
    """Atomically take one record matching `ready` that is free; the claimed document (after the update), or None."""
    now = now or utcnow()
    update: dict[str, Any] = {
        "$set": {fields.owner: owner, fields.until: now + dt.timedelta(seconds=seconds), **(set_fields or {})}
    }
    if inc:
        update["$inc"] = dict(inc)
    found = document._get_collection().find_one_and_update(
        {**ready, **free_filter(fields, now)},
        update,
        sort=list(sort) if sort else None,
        return_document=ReturnDocument.AFTER,
    )
    return document._from_son(found) if found is not None else None


def claim_batch(
    document: type[D],
    ready: Mapping[str, Any],
    owner: str,
    seconds: float,
    limit: int,
    *,
    fields: LeaseFields = TOP_LEVEL,
    set_fields: Mapping[str, Any] | None = None,
    inc: Mapping[str, int] | None = None,
    sort: Sequence[tuple[str, int]] | None = None,
    now: dt.datetime | None = None,
) -> list[D]:
    """Up to `limit` free records matching `ready`, claimed by one `update_many` (the batch form of `claim`).

    One indexed read picks the candidates; the update re-checks `ready` and freeness per document as it
    writes it (atomic per document, as on MongoDB), so a racing batch never takes the same record; one read
    by `_id` returns the records this call won. `owner` must not be held by another caller at the same time.
    """
    now = now or utcnow()
    query = {**ready, **free_filter(fields, now)}
    collection = document._get_collection()
    update: dict[str, Any] = {
        "$set": {fields.owner: owner, fields.until: now + dt.timedelta(seconds=seconds), **(set_fields or {})}
    }
    if inc:
        update["$inc"] = dict(inc)
    for _ in range(3):  # candidates all taken by a racing batch: look again
        candidates = list(collection.find(query, sort=list(sort) if sort else None, limit=limit))
        if not candidates:
            return []
        ids = [row["_id"] for row in candidates]
        modified = collection.update_many({"_id": {"$in": ids}, **query}, update).modified_count
        if modified == len(ids):  # all ours: the documents are the candidates with the update applied
            return [document._from_son(_updated(row, update)) for row in candidates]
        if modified:
            won = collection.find({"_id": {"$in": ids}, fields.owner: owner}, sort=list(sort) if sort else None)
            return [document._from_son(row) for row in won]
    return []


def _updated(row: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """`row` after `update`'s `$set` and `$inc` (dotted paths), as the database now holds it."""
    for operator, changes in update.items():
        for path, value in changes.items():
            *parents, leaf = path.split(".")
            target = row
            for part in parents:
                target = target.setdefault(part, {})
            target[leaf] = (target.get(leaf) or 0) + value if operator == "$inc" else value
    return row


def renew(
    document: type[Document],
    record_id: Any,
    owner: str,
    seconds: float,
    *,
    fields: LeaseFields = TOP_LEVEL,
    now: dt.datetime | None = None,
) -> bool:
    """Extend our lease; False when it is no longer ours (expired and taken over)."""
    until = (now or utcnow()) + dt.timedelta(seconds=seconds)
    result = document._get_collection().update_one(
        {"_id": record_id, fields.owner: owner}, {"$set": {fields.until: until}}
    )
    return result.matched_count == 1


def finish(
    document: type[Document],
    record_id: Any,
    owner: str,
    *,
    fields: LeaseFields = TOP_LEVEL,
    set_fields: Mapping[str, Any] | None = None,
    unset_fields: Sequence[str] = (),
    match: Mapping[str, Any] | None = None,
) -> bool:
    """Drop our claim and write the result in one update, only while we still own it (release and complete)."""
    update: dict[str, Any] = {"$unset": {fields.owner: "", fields.until: "", **dict.fromkeys(unset_fields, "")}}
    if set_fields:
        update["$set"] = dict(set_fields)
    result = document._get_collection().update_one({"_id": record_id, fields.owner: owner, **(match or {})}, update)
    return result.matched_count == 1


def held_by(document: type[Document], record_id: Any, owner: str, *, fields: LeaseFields = TOP_LEVEL) -> bool:
    """True while `owner` holds the record's claim."""
    return document._get_collection().count_documents({"_id": record_id, fields.owner: owner}, limit=1) == 1
