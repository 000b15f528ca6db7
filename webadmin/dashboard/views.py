"""GET /dashboard: tickets per day, by category and priority, open load, triage latency, SLA breaches."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from flask import render_template

from models import PRIORITIES, Ticket, User, utcnow
from models.tickets import OPEN_STATUSES
from webadmin.dashboard import bp
from webadmin.dashboard.charts import bar_chart, column_chart
from webadmin.security import staff_required

DAYS = 14


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def dashboard_figures(now: dt.datetime | None = None) -> dict:
    now = now or utcnow()
    start = (now - dt.timedelta(days=DAYS - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    per_day = Counter(d.date() for d in Ticket.objects(created_at__gte=start).scalar("created_at") if d)
    days = [(start + dt.timedelta(days=i)).date() for i in range(DAYS)]

    open_query = Ticket.objects(status__in=list(OPEN_STATUSES)).no_dereference()
    open_rows = list(open_query.scalar("category", "priority", "assignee", "sla_due_at"))
    by_category = Counter((c or "uncategorised") for c, _, _, _ in open_rows)
    by_priority = Counter(p or "medium" for _, p, _, _ in open_rows)
    load = Counter(getattr(a, "id", a) for _, _, a, _ in open_rows if a is not None)
    staff = {u.id: u.email for u in User.objects(role__in=["moderator", "admin"]).only("email")}
    unassigned = sum(1 for _, _, a, _ in open_rows if a is None)
    breached = Counter(p or "medium" for _, p, _, due in open_rows if due is not None and due < now)

    latencies = [
        (done - created).total_seconds()
        for created, done in Ticket.objects(triage__completed_at__gte=now - dt.timedelta(days=7)).scalar(
            "created_at", "triage__completed_at"
        )
        if created and done
    ]
    return {
        "per_day": [(d.strftime("%b %d"), per_day.get(d, 0)) for d in days],
        "by_category": list(by_category.items()),
        "by_priority": [(p, by_priority.get(p, 0)) for p in PRIORITIES],
        "load": [(staff.get(uid, "(former staff)"), n) for uid, n in load.items()] + [("unassigned", unassigned)],
        "breached": [(p, breached.get(p, 0)) for p in PRIORITIES],
        "open_total": len(open_rows),
        "breached_total": sum(breached.values()),
        "triage_p50": _percentile(latencies, 0.5),
        "triage_p95": _percentile(latencies, 0.95),
        "triage_count": len(latencies),
        "triage_pending": Ticket.objects(triage__state="pending").count(),
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
