"""What one dashboard view shows, drawn from the stored figures (models/figures.py)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from bson import ObjectId

from models import PRIORITIES, Ticket
from models.figures import DAYS, first_day


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
