"""GET /dashboard: admins see the team's figures, moderators their own (tickets assigned to them)."""

from __future__ import annotations

from typing import Any

from flask import render_template
from flask_jwt_extended import current_user
from markupsafe import Markup

from models import utcnow
from models.figures import current
from models.users import staff_members
from triage.queue import oldest_untriaged
from webadmin.dashboard import bp
from webadmin.dashboard.charts import MUTED, PRIORITY_COLOURS, bar_chart, column_chart
from webadmin.dashboard.figures import figures_for, triage_pending
from webadmin.security import staff_required


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}s"


def oldest_kpi() -> tuple[str, str, bool]:
    """The oldest ticket still waiting for triage: a stuck queue shows here first (index `triage.state, number`)."""
    oldest = oldest_untriaged(utcnow())
    if oldest is None:
        return "—", "oldest untriaged", False
    number, seconds = oldest
    return f"{seconds:.0f}s", f"oldest untriaged (#{number})", seconds > 300


def team_view(figures: dict[str, Any]) -> tuple[list[tuple[str, str, bool]], list[tuple[str, Markup]]]:
    staff = {u.id: u.email for u in staff_members(active_only=False)}
    load = figures["load"]
    unassigned = load.pop(None, 0)
    rows = [(staff.get(uid, "(former staff)"), n) for uid, n in load.items()]
    merged: dict[str, int] = {}
    for label, n in rows:  # several former staff members show as one bar
        merged[label] = merged.get(label, 0) + n
    load_chart = bar_chart([*merged.items(), ("unassigned", unassigned)], colors={"unassigned": MUTED})
    triage = figures["triage"]
    kpis = [
        (str(figures["open_total"]), "open tickets", False),
        (str(figures["breached_total"]), "past SLA", figures["breached_total"] > 0),
        (str(figures["escalated_total"]), "escalated", figures["escalated_total"] > 0),
        (str(triage_pending()), "waiting for triage", False),
        oldest_kpi(),
        (_seconds(triage["p50"]), "triage latency p50", False),
        (_seconds(triage["p95"]), f"triage latency p95 ({triage['count']} in 7 days)", False),
    ]
    charts = [
        ("New tickets per day", column_chart(figures["per_day"])),
        ("Open by category", bar_chart(figures["by_category"])),
        ("Open by priority", bar_chart(figures["by_priority"], colors=PRIORITY_COLOURS, keep_order=True)),
        ("Open load per moderator", load_chart),
        ("Open past SLA, by priority", bar_chart(figures["breached"], colors=PRIORITY_COLOURS, keep_order=True)),
    ]
    return kpis, charts


def moderator_view(figures: dict[str, Any]) -> tuple[list[tuple[str, str, bool]], list[tuple[str, Markup]]]:
    kpis = [
        (str(figures["open_total"]), "my open tickets", False),
        (str(figures["breached_total"]), "mine past SLA", figures["breached_total"] > 0),
        (str(figures["escalated_total"]), "mine escalated", figures["escalated_total"] > 0),
        (str(triage_pending()), "waiting for triage (team)", False),
        oldest_kpi(),
    ]
    charts = [
        ("My new tickets per day", column_chart(figures["per_day"])),
        ("My open tickets by category", bar_chart(figures["by_category"])),
        ("My open tickets by priority", bar_chart(figures["by_priority"], colors=PRIORITY_COLOURS, keep_order=True)),
        ("Mine past SLA, by priority", bar_chart(figures["breached"], colors=PRIORITY_COLOURS, keep_order=True)),
    ]
    return kpis, charts


@bp.get("/dashboard")
@staff_required
def overview() -> str:
    now = utcnow()
    data = current(now)
    team = current_user.role == "admin"
    figures = figures_for(data, now, None if team else current_user.id)
    kpis, charts = team_view(figures) if team else moderator_view(figures)
    return render_template(
        "dashboard.html", kpis=kpis, charts=charts, team=team, computed_at=data.get("computed_at") or now
    )
