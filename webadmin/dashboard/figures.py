"""The dashboard's figures: three aggregation pipelines over the tickets, kept as a snapshot.

The pipelines group every open ticket (and the last 14 days' new ones) by category, priority, assignee,
SLA and escalation, so one computation serves the team view (admins) and each moderator's own view. The
result is stored (models/snapshots.py) and recomputed only when a ticket was written since it was taken
(one indexed probe on `status, -updated_at`) or when it is older than MAX_AGE (SLA deadlines pass with
time, and a few writes do not stamp `updated_at`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from typing import Any

from bson import ObjectId

from models import PRIORITIES, STATUSES, Ticket, utcnow
from models.snapshots import load_snapshot, save_snapshot
from models.tickets import OPEN_STATUSES

DAYS = 14
TRIAGED = ("done", "review")  # a triage that produced a result; "failed" ones are escalated instead
SNAPSHOT = "dashboard"
MAX_AGE = dt.timedelta(seconds=60)
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


def snapshot(now: dt.datetime | None = None) -> dict[str, Any]:
    """The grouped counts every view draws from: the stored ones while still true, else computed afresh."""
    now = now or utcnow()
    stored = load_snapshot(SNAPSHOT)
    if stored and now - stored["computed_at"] < MAX_AGE and not tickets_written_since(stored["data_since"]):
        return stored
    data = compute(now)
    save_snapshot(SNAPSHOT, data, now - SETTLE)
    return data


def figures_for(data: dict[str, Any], now: dt.datetime, assignee: ObjectId | None = None) -> dict[str, Any]:
    """What one view shows: the whole team's figures, or only the tickets assigned to `assignee`."""
    mine = [g for g in data["open"] if assignee is None or g["assignee"] == assignee]
    by_category: Counter[str] = Counter()
    by_priority: Counter[str] = Counter()
    breached: Counter[str] = Counter()
    load: Counter[Any] = Counter()
    escalated = 0
    for group in mine:
        priority, n = group["priority"] or "medium", group["n"]
        by_category[group["category"] or "uncategorised"] += n
        by_priority[priority] += n
        load[group["assignee"]] += n
        breached[priority] += n if group["overdue"] else 0
        escalated += n if group["escalated"] else 0
    start = first_day(now)
    days = [(start + dt.timedelta(days=i)).date() for i in range(DAYS)]
    per_day: Counter[str] = Counter()
    for row in data["per_day"]:
        if assignee is None or row["assignee"] == assignee:
            per_day[row["day"]] += row["n"]
    return {
        "per_day": [(d, per_day.get(d.isoformat(), 0)) for d in days],
        "by_category": list(by_category.items()),
        "by_priority": [(p, by_priority.get(p, 0)) for p in PRIORITIES],
        "load": load,
        "breached": [(p, breached.get(p, 0)) for p in PRIORITIES],
        "open_total": sum(by_priority.values()),
        "breached_total": sum(breached.values()),
        "escalated_total": escalated,
        "triage": data["triage"],
    }


def triage_pending() -> int:
    """Tickets waiting for their triage now (index `triage.state, ...`): counted live, it changes by the second."""
    return Ticket.objects(triage__state="pending").count()
