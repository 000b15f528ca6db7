"""The dashboard's figures: three aggregation pipelines over the tickets, kept as one snapshot document.

The pipelines group every open ticket (and the last 14 days' new ones) by category, priority, assignee,
SLA and escalation, so one computation serves the team view (admins) and each moderator's own view. Their
result is stored (models/snapshots.py) and, while pages show it, recomputed by the daemon's
`dashboard-figures` job when a ticket was written since it was taken (one indexed probe on
`status, -updated_at`) or when it is older than MAX_AGE (SLA deadlines pass with time, and a few writes do not
stamp `updated_at`). A page reads the stored figures and computes them itself only when none are younger than
SERVE_FOR (no daemon running): no request waits on a computation that reads every open ticket.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from typing import Any

from models.base import utcnow
from models.snapshots import load_snapshot, save_snapshot, view_snapshot
from models.tickets import OPEN_STATUSES, STATUSES, Ticket

DAYS = 14
TRIAGED = ("done", "review")  # a triage that produced a result; "failed" ones are escalated instead
SNAPSHOT = "dashboard"
REFRESH_SECONDS = 5  # the daemon's job runs this often: how stale the figures may be while tickets are written
MAX_AGE = dt.timedelta(seconds=60)
SERVE_FOR = 2 * MAX_AGE  # older figures than this mean no daemon keeps them: a page computes its own
WATCHED = dt.timedelta(minutes=10)  # the job keeps the figures fresh this long after a page showed them
REST = 10  # the job waits ten times a computation's length before the next
SETTLE = dt.timedelta(seconds=2)  # a write stamped just before a computation may commit after it read


def percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank percentile (0 < q <= 1): the smallest value with at least q of them at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = math.ceil(round(q * len(ordered), 9))  # round: 0.07 * 100 is 7.000000000000001 in floating point
    return ordered[min(len(ordered), max(1, rank)) - 1]


def _aggregate(pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list(Ticket._get_collection().aggregate(pipeline))


def first_day(now: dt.datetime) -> dt.datetime:
    return (now - dt.timedelta(days=DAYS - 1)).replace(hour=0, minute=0, second=0, microsecond=0)


def new_per_day(start: dt.datetime) -> list[dict[str, Any]]:
    """New tickets per calendar day (UTC) and assignee since `start` (index `-created_at`)."""
    day = {"$dateToString": {"format": "%Y-%m-%d", "date": "$created_at"}}
    rows = _aggregate(
        [
            {"$match": {"created_at": {"$gte": start}}},
            {"$group": {"_id": {"day": day, "assignee": "$assignee"}, "n": {"$sum": 1}}},
        ]
    )
    return [{"day": r["_id"]["day"], "assignee": r["_id"].get("assignee"), "n": r["n"]} for r in rows]


def open_groups(now: dt.datetime) -> list[dict[str, Any]]:
    """Open tickets counted per (category, priority, assignee, past SLA, escalated) (index `status, ...`)."""
    overdue = {"$and": [{"$gt": ["$sla_due_at", None]}, {"$lt": ["$sla_due_at", now]}]}
    key = {
        "category": "$category",
        "priority": "$priority",
        "assignee": "$assignee",
        "overdue": overdue,
        "escalated": "$escalated",
    }
    rows = _aggregate(
        [{"$match": {"status": {"$in": list(OPEN_STATUSES)}}}, {"$group": {"_id": key, "n": {"$sum": 1}}}]
    )
    return [{**{k: r["_id"].get(k) for k in key}, "n": r["n"]} for r in rows]


def triage_latencies(since: dt.datetime) -> list[float]:
    """Seconds from arrival to a successful first triage, for triages completed since `since`.

    A re-triaged ticket (generation > 0) is left out: nothing records when its re-triage was queued,
    and its age would count as latency. Failed or unfinished triages are left out too.
    """
    rows = _aggregate(
        [
            {
                "$match": {
                    "triage.completed_at": {"$gte": since},
                    "triage.state": {"$in": list(TRIAGED)},
                    "triage.generation": {"$in": [0, None]},
                    "created_at": {"$ne": None},
                }
            },
            {"$project": {"ms": {"$subtract": ["$triage.completed_at", "$created_at"]}}},
            {"$group": {"_id": None, "ms": {"$push": "$ms"}}},
        ]
    )
    return [ms / 1000 for ms in rows[0]["ms"]] if rows else []


def compute(now: dt.datetime) -> dict[str, Any]:
    latencies = triage_latencies(now - dt.timedelta(days=7))
    return {
        "per_day": new_per_day(first_day(now)),
        "open": open_groups(now),
        "triage": {
            "p50": percentile(latencies, 0.5),
            "p95": percentile(latencies, 0.95),
            "count": len(latencies),
        },
    }


def tickets_written_since(moment: dt.datetime) -> bool:
    """Whether any ticket was stamped `updated_at` after `moment` (index `status, -updated_at`)."""
    found = Ticket.objects(status__in=list(STATUSES), updated_at__gt=moment).only("id")
    return found.hint([("status", 1), ("updated_at", -1)]).first() is not None


def _compute_and_save(now: dt.datetime) -> dict[str, Any]:
    began = time.perf_counter()
    data = compute(now)
    data["took"] = time.perf_counter() - began
    save_snapshot(SNAPSHOT, data, now - SETTLE)
    return {**data, "computed_at": now}


def refresh(now: dt.datetime | None = None) -> bool:
    """The daemon's job: while a page showed the figures in the last WATCHED, recompute them when a ticket was
    written since or they are MAX_AGE old.

    After a computation that took t seconds the next waits at least REST * t, which bounds the job's share of
    the database on a large helpdesk with steady writes; with no one looking, the job reads nothing more.
    """
    now = now or utcnow()
    stored = load_snapshot(SNAPSHOT)
    if not stored or now - stored.get("viewed_at", stored["computed_at"]) > WATCHED:
        return False
    age = now - stored["computed_at"]
    if age < dt.timedelta(seconds=REST * stored.get("took", 0.0)):
        return False
    if age < MAX_AGE and not tickets_written_since(stored["data_since"]):
        return False
    _compute_and_save(now)
    return True


def current(now: dt.datetime | None = None) -> dict[str, Any]:
    """The figures a page shows: the stored ones, or computed here when none are younger than SERVE_FOR."""
    now = now or utcnow()
    stored = view_snapshot(SNAPSHOT, now)
    if stored and now - stored["computed_at"] < SERVE_FOR:
        return stored
    return _compute_and_save(now)
