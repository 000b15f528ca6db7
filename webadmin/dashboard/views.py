"""GET /dashboard: tickets per day, by category and priority, open load, triage latency, SLA breaches."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from typing import Any

from flask import render_template

from models import PRIORITIES, Ticket, utcnow
from models.tickets import OPEN_STATUSES
from models.users import staff_members
from triage.queue import oldest_untriaged
from webadmin.dashboard import bp
from webadmin.dashboard.charts import bar_chart, column_chart
from webadmin.security import staff_required

DAYS = 14
TRIAGED = ("done", "review")  # a triage that produced a result; "failed" ones are escalated instead


def percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank percentile (0 < q <= 1): the smallest value with at least q of them at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = math.ceil(round(q * len(ordered), 9))  # round: 0.07 * 100 is 7.000000000000001 in floating point
    return ordered[min(len(ordered), max(1, rank)) - 1]


def _aggregate(pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list(Ticket._get_collection().aggregate(pipeline))


def tickets_per_day(start: dt.datetime) -> dict[dt.date, int]:
    """New tickets per calendar day (UTC) since `start` (index `-created_at`)."""
    day = {"$dateToString": {"format": "%Y-%m-%d", "date": "$created_at"}}
    rows = _aggregate([{"$match": {"created_at": {"$gte": start}}}, {"$group": {"_id": day, "n": {"$sum": 1}}}])
    return {dt.date.fromisoformat(row["_id"]): row["n"] for row in rows if row["_id"]}


def open_groups(now: dt.datetime) -> list[dict[str, Any]]:
    """Open tickets counted per (category, priority, assignee, past SLA) (index `status, ...`)."""
    overdue = {"$and": [{"$gt": ["$sla_due_at", None]}, {"$lt": ["$sla_due_at", now]}]}
    key = {"category": "$category", "priority": "$priority", "assignee": "$assignee", "overdue": overdue}
    return _aggregate(
        [{"$match": {"status": {"$in": list(OPEN_STATUSES)}}}, {"$group": {"_id": key, "n": {"$sum": 1}}}]
    )


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


def dashboard_figures(now: dt.datetime | None = None) -> dict:
    now = now or utcnow()
    start = (now - dt.timedelta(days=DAYS - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    per_day = tickets_per_day(start)
    days = [(start + dt.timedelta(days=i)).date() for i in range(DAYS)]

    by_category: Counter[str] = Counter()
    by_priority: Counter[str] = Counter()
    load: Counter[Any] = Counter()
    breached: Counter[str] = Counter()
    for group in open_groups(now):  # a few dozen groups, not one row per ticket
        key, n = group["_id"], group["n"]
        priority = key.get("priority") or "medium"
        by_category[key.get("category") or "uncategorised"] += n
        by_priority[priority] += n
        load[key.get("assignee")] += n
        if key.get("overdue"):
            breached[priority] += n
    unassigned = load.pop(None, 0)
    staff = {u.id: u.email for u in staff_members(active_only=False)}
    latencies = triage_latencies(now - dt.timedelta(days=7))
    return {
        "per_day": [(d.strftime("%b %d"), per_day.get(d, 0)) for d in days],
        "by_category": list(by_category.items()),
        "by_priority": [(p, by_priority.get(p, 0)) for p in PRIORITIES],
        "load": [(staff.get(uid, "(former staff)"), n) for uid, n in load.items()] + [("unassigned", unassigned)],
        "breached": [(p, breached.get(p, 0)) for p in PRIORITIES],
        "open_total": sum(by_priority.values()),
        "breached_total": sum(breached.values()),
        "triage_p50": percentile(latencies, 0.5),
        "triage_p95": percentile(latencies, 0.95),
        "triage_count": len(latencies),
        "triage_pending": Ticket.objects(triage__state="pending").count(),
        "triage_oldest": oldest_untriaged(now),  # (number, seconds) of the oldest untriaged ticket, or None
    }


@bp.get("/dashboard")
@staff_required
def overview() -> str:
    figures = dashboard_figures()
    charts = {
        "per_day": column_chart(figures["per_day"]),
        "by_category": bar_chart(figures["by_category"]),
        "by_priority": bar_chart(figures["by_priority"]),
        "load": bar_chart(figures["load"]),
        "breached": bar_chart(figures["breached"]),
    }
    return render_template("dashboard.html", figures=figures, charts=charts)
