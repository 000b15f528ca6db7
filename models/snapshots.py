"""Figures computed from many tickets, kept as one document per name (an on-demand materialised view).

The dashboard's aggregations read every open ticket; their result is stored here with the moment it was
computed and the last time a page showed it; while pages show it, the daemon recomputes it when a ticket
changed since then or it is older than a limit (models/figures.py). Lookups are by `_id`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from models.base import utcnow
from models.users import User

COLLECTION = "snapshots"


def _collection() -> Any:
    return User._get_db()[COLLECTION]


def load_snapshot(name: str) -> dict[str, Any] | None:
    """The stored figures called `name` (with `computed_at` and `data_since`), or None."""
    return _collection().find_one({"_id": name})


def view_snapshot(name: str, now: dt.datetime) -> dict[str, Any] | None:
    """The stored figures called `name`, noting that someone looked at them at `now` (`viewed_at`), or None."""
    return _collection().find_one_and_update({"_id": name}, {"$set": {"viewed_at": now}})


def save_snapshot(name: str, data: dict[str, Any], data_since: dt.datetime) -> None:
    """Store `data` as `name` (keeping `viewed_at`); `data_since`: every ticket written up to then is counted in it."""
    document = {**data, "computed_at": utcnow(), "data_since": data_since}
    _collection().update_one({"_id": name}, {"$set": document}, upsert=True)
