# ruff: noqa: F811 - pytest fixtures imported from tests.web_support
"""The dashboard (GET /dashboard): who may open it, and that every figure it draws is the data's: the
team's for admins, a moderator's own tickets for moderators. Figures follow every ticket change at the daemon's
next refresh (models/figures.py); a page computes them itself only when no daemon keeps them.

The charts are server-side SVG; each bar carries a `<title>label: value</title>`, which is what a user
reads on hover and what these tests read back.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections import Counter

import pytest

from models import Ticket, TriageState, User, figures, utcnow
from models.figures import percentile, triage_latencies
from models.snapshots import COLLECTION
from tests.web_support import app, bearer, cookie_login, make_ticket, make_user  # noqa: F401

SECTION = re.compile(r'<section class="card[^"]*"><h2>(.*?)</h2>(.*?)</section>', re.S)
BAR_TITLE = re.compile(r"<title>(.*?)</title>")
KPI = re.compile(r'<div class="kpi([^"]*)"><span>(.*?)</span>(.*?)</div>', re.S)


def charts_of(page: str) -> dict[str, dict[str, int]]:
    """{chart heading: {bar label: value}} as rendered."""
    charts: dict[str, dict[str, int]] = {}
    for heading, body in SECTION.findall(page):
        bars: dict[str, int] = {}
        for title in BAR_TITLE.findall(body):
            label, _, value = html.unescape(title).rpartition(": ")
            assert label not in bars, f"label {label!r} drawn twice in {heading!r}"
            bars[label] = int(value)
        charts[html.unescape(heading)] = bars
    return charts


def kpis_of(page: str) -> dict[str, tuple[str, bool]]:
    """{kpi caption: (shown value, highlighted as bad)}."""
    return {
        html.unescape(caption).strip(): (html.unescape(value), "bad" in classes.split())
        for classes, value, caption in KPI.findall(page)
    }


def day_label(moment: dt.datetime) -> str:
    return moment.strftime("%b %d")


def done_triage(created: dt.datetime, seconds: float) -> TriageState:
    return TriageState(state="done", completed_at=created + dt.timedelta(seconds=seconds))


def next_pass(passes: int = 1) -> bool:
    """The daemon's dashboard-figures job, as it runs `passes` intervals from now: whether it recomputed."""
    return figures.refresh(utcnow() + passes * dt.timedelta(seconds=figures.REFRESH_SECONDS))


def dashboard_page(client, headers: dict[str, str] | None = None) -> str:  # noqa: ANN001 - a FlaskClient
    response = client.get("/dashboard", headers=headers or {})
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return response.get_data(as_text=True)


def test_dashboard_is_for_staff_only(app) -> None:
    moderator = make_user("ana@example.test")
    admin = make_user("boss@example.test", role="admin")
    requester = make_user("customer@example.test", role="user", password=None)
    make_ticket(assignee=moderator, category="network")

    anonymous = app.test_client().get("/dashboard")
    assert anonymous.status_code == 302
    assert anonymous.headers["Location"] == "/login?next=/dashboard"

    refused = app.test_client().get("/dashboard", headers=bearer(app, requester))
    assert refused.status_code == 403
    assert "open tickets" not in refused.get_data(as_text=True)
    assert "network" not in refused.get_data(as_text=True)

    cookie_client = app.test_client()
    cookie_login(cookie_client, "ana@example.test")
    assert "My open tickets by category" in dashboard_page(cookie_client)
    assert "Open by category" in dashboard_page(app.test_client(), bearer(app, admin))


def test_dashboard_figures_match_the_tickets(app) -> None:
    ana = make_user("ana@example.test", skills=("vpn",))
    bo = make_user("bo@example.test", skills=("billing",))
    boss = make_user("boss@example.test", role="admin")
    now = utcnow()
    hour = dt.timedelta(hours=1)
    day = dt.timedelta(days=1)
    # (created, status, category, priority, assignee, sla due, triage)
    rows = [
        (now - dt.timedelta(seconds=60), "open", "network", "high", ana, now - hour, 4),
        (now - dt.timedelta(seconds=90), "pending", "network", "urgent", ana, now + 5 * hour, 10),
        (now - day, "escalated", "billing", "low", bo, now - 2 * hour, 30),
        (now - 3 * day, "new", None, "medium", None, None, None),  # still waiting for triage
        (now - 3 * day, "closed", "billing", "high", bo, now - 2 * day, 20),  # closed: not open, not breached
        (now - 2 * day, "resolved", "hardware", "urgent", None, now - day, 600),
        # 20 days old: outside "per day" (14 days) and triage latency (7 days), but still open and late
        (now - 20 * day, "open", "network", "low", ana, now - 19 * day, 5),
    ]
    for created, status, category, priority, assignee, due, latency in rows:
        make_ticket(
            status=status,
            category=category,
            priority=priority,
            assignee=assignee,
            sla_due_at=due,
            created_at=created,
            escalated=status == "escalated",
            triage=TriageState(state="pending") if latency is None else done_triage(created, latency),
        )

    page = dashboard_page(app.test_client(), bearer(app, boss))
    rendered_at = utcnow()
    charts = charts_of(page)
    kpis = kpis_of(page)

    per_day = charts["New tickets per day"]
    assert len(per_day) == 14
    assert list(per_day)[-1] in {day_label(now), day_label(rendered_at)}  # the last bar is today
    expected_days = Counter(day_label(created) for created, *_ in rows if created > now - 13 * day)
    assert {label: n for label, n in per_day.items() if n} == dict(expected_days)
    assert sum(per_day.values()) == 6

    assert charts["Open by category"] == {"network": 3, "billing": 1, "uncategorised": 1}
    assert charts["Open by priority"] == {"low": 2, "medium": 1, "high": 1, "urgent": 1}
    assert charts["Open load per moderator"] == {"ana@example.test": 3, "bo@example.test": 1, "unassigned": 1}
    assert charts["Open past SLA, by priority"] == {"low": 2, "medium": 0, "high": 1, "urgent": 0}

    assert kpis["open tickets"] == ("5", False)
    assert kpis["past SLA"] == ("3", True)
    assert kpis["escalated"] == ("1", True)
    assert kpis["waiting for triage"] == ("1", False)
    # latencies in the last 7 days: 4, 10, 20, 30, 600 seconds
    assert kpis["triage latency p50"] == ("20.0s", False)
    assert kpis["triage latency p95 (5 in 7 days)"] == ("600.0s", False)


def test_empty_dashboard_shows_zeroes_and_no_latency(app) -> None:
    admin = make_user("boss@example.test", role="admin")
    page = dashboard_page(app.test_client(), bearer(app, admin))
    kpis = kpis_of(page)
    assert kpis["open tickets"] == ("0", False)
    assert kpis["past SLA"] == ("0", False)
    assert kpis["escalated"] == ("0", False)
    assert kpis["waiting for triage"] == ("0", False)
    assert kpis["triage latency p50"] == ("—", False)
    assert kpis["triage latency p95 (0 in 7 days)"] == ("—", False)
    charts = charts_of(page)
    assert set(charts["New tickets per day"].values()) == {0}
    assert charts["Open by category"] == {}
    assert "No data yet." in page
    assert charts["Open load per moderator"] == {"unassigned": 0}


def test_resolving_a_late_ticket_takes_it_off_the_open_figures(app) -> None:
    moderator = make_user("ana@example.test")
    ticket = make_ticket(
        assignee=moderator,
        category="network",
        priority="high",
        sla_due_at=utcnow() - dt.timedelta(minutes=5),
        triage=TriageState(state="done"),
    )
    client = app.test_client()
    csrf = cookie_login(client, "ana@example.test")

    before = dashboard_page(client)
    assert kpis_of(before)["my open tickets"] == ("1", False)
    assert kpis_of(before)["mine past SLA"] == ("1", True)
    assert charts_of(before)["My open tickets by category"] == {"network": 1}
    assert charts_of(before)["Mine past SLA, by priority"]["high"] == 1

    response = client.post(f"/tickets/{ticket.number}/status", data={"status": "resolved", "csrf_token": csrf})
    assert response.status_code == 302

    assert next_pass()
    after = dashboard_page(client)
    assert kpis_of(after)["my open tickets"] == ("0", False)
    assert kpis_of(after)["mine past SLA"] == ("0", False)
    assert charts_of(after)["My open tickets by category"] == {}
    assert charts_of(after)["Mine past SLA, by priority"]["high"] == 0
    # it still counts as created on its day
    assert charts_of(after)["My new tickets per day"][day_label(ticket.created_at)] == 1


def test_tickets_of_someone_no_longer_staff_show_as_former_staff(app) -> None:
    moderator = make_user("ana@example.test", role="admin")
    leaver = make_user("leaver@example.test")
    make_ticket(assignee=leaver)
    make_ticket(assignee=leaver)
    User.objects(id=leaver.id).update_one(set__role="user")
    page = dashboard_page(app.test_client(), bearer(app, moderator))
    assert charts_of(page)["Open load per moderator"] == {"(former staff)": 2, "unassigned": 0}
    assert "leaver@example.test" not in page


def test_chart_labels_are_escaped(app) -> None:
    moderator = make_user("ana@example.test", role="admin")
    hostile = '<img src=x onerror="alert(1)">'
    make_ticket(category=hostile)
    page = dashboard_page(app.test_client(), bearer(app, moderator))
    assert hostile not in page
    assert "&lt;img src=x" in page
    assert charts_of(page)["Open by category"] == {hostile: 1}


def test_triage_latency_ignores_tickets_triaged_over_a_week_ago(app) -> None:
    moderator = make_user("ana@example.test", role="admin")
    now = utcnow()
    recent = now - dt.timedelta(hours=2)
    old = now - dt.timedelta(days=8)
    make_ticket(created_at=recent, triage=done_triage(recent, 12))
    make_ticket(created_at=old, triage=done_triage(old, 900))
    kpis = kpis_of(dashboard_page(app.test_client(), bearer(app, moderator)))
    assert kpis["triage latency p50"] == ("12.0s", False)
    assert kpis["triage latency p95 (1 in 7 days)"] == ("12.0s", False)
    assert Ticket.objects.count() == 2


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        # regression: the index was int(q * n), one rank too high whenever q * n is a whole number
        (list(range(1, 21)), 0.95, 19),
        ([1, 2, 3, 4], 0.5, 2),
        (list(range(1, 21)), 0.5, 10),
        ([4, 10, 20, 30, 600], 0.5, 20),
        ([4, 10, 20, 30, 600], 0.95, 600),
        ([1, 2, 3, 4], 0.95, 4),
        ([3, 1, 2], 0.5, 2),  # unsorted input
        ([7.5], 0.5, 7.5),
        ([7.5], 0.95, 7.5),
        (list(range(1, 101)), 0.07, 7),  # 0.07 * 100 is 7.000000000000001 in floating point
        (list(range(1, 101)), 0.29, 29),  # and 0.29 * 100 is 28.999999999999996
        ([], 0.5, None),
    ],
)
def test_percentile_is_the_nearest_rank(values: list[float], q: float, expected: float | None) -> None:
    assert percentile(values, q) == expected


def test_triage_latency_counts_only_successful_first_triages(app) -> None:
    created = dt.datetime(2025, 3, 1, 12, 0)
    later = created + dt.timedelta(seconds=40)
    rows = [
        (created, "done", 0, later),
        (created, "review", None, later + dt.timedelta(seconds=20)),  # tickets stored before `generation`
        (created, "failed", 0, later),  # attempts used up: escalated, not triaged
        (created, "pending", 0, later),  # a retry is waiting
        (created - dt.timedelta(days=30), "done", 2, later),  # re-triaged: its age is not triage latency
        (created, "done", 0, None),
        (created - dt.timedelta(days=9), "done", 0, created - dt.timedelta(days=8)),  # finished before `since`
    ]
    for arrived, state, generation, done in rows:
        ticket = make_ticket(created_at=arrived, triage=TriageState(state=state, completed_at=done))
        if generation is None:
            Ticket.objects(id=ticket.id).update_one(unset__triage__generation=True)
        else:
            Ticket.objects(id=ticket.id).update_one(set__triage__generation=generation)
    assert sorted(triage_latencies(created - dt.timedelta(days=7))) == [40.0, 60.0]


def test_triage_latency_ignores_re_triaged_and_failed_tickets(app) -> None:
    """Regression: a re-triaged old ticket counted its whole age, and failed triages counted too."""
    moderator = make_user("ana@example.test", role="admin")
    now = utcnow()
    recent = now - dt.timedelta(minutes=30)
    make_ticket(created_at=recent, triage=done_triage(recent, 12))
    make_ticket(created_at=recent, triage=TriageState(state="review", completed_at=recent + dt.timedelta(seconds=30)))
    make_ticket(created_at=recent, triage=TriageState(state="failed", completed_at=recent + dt.timedelta(seconds=900)))
    old = now - dt.timedelta(days=40)
    make_ticket(
        created_at=old, triage=TriageState(state="done", generation=1, completed_at=now - dt.timedelta(minutes=1))
    )
    kpis = kpis_of(dashboard_page(app.test_client(), bearer(app, moderator)))
    assert kpis["triage latency p50"] == ("12.0s", False)
    assert kpis["triage latency p95 (2 in 7 days)"] == ("30.0s", False)


def test_moderators_see_their_own_figures_and_admins_the_team(app) -> None:
    ana = make_user("ana@example.test", skills=("vpn",))
    bo = make_user("bo@example.test", skills=("billing",))
    boss = make_user("boss@example.test", role="admin")
    late = utcnow() - dt.timedelta(hours=1)
    make_ticket(assignee=ana, priority="urgent", category="network", sla_due_at=late)
    make_ticket(assignee=ana, priority="low", category="network", status="escalated", escalated=True)
    make_ticket(assignee=bo, priority="high", category="billing", sla_due_at=late)
    make_ticket(priority="medium", category="billing")

    mine = dashboard_page(app.test_client(), bearer(app, ana))
    assert kpis_of(mine)["my open tickets"] == ("2", False)
    assert kpis_of(mine)["mine past SLA"] == ("1", True)
    assert kpis_of(mine)["mine escalated"] == ("1", True)
    assert charts_of(mine)["My open tickets by priority"] == {"low": 1, "medium": 0, "high": 0, "urgent": 1}
    assert charts_of(mine)["My open tickets by category"] == {"network": 2}
    assert "Open load per moderator" not in charts_of(mine)
    assert "bo@example.test" not in mine and "billing" not in mine

    team = dashboard_page(app.test_client(), bearer(app, boss))
    assert kpis_of(team)["open tickets"] == ("4", False)
    assert kpis_of(team)["past SLA"] == ("2", True)
    assert kpis_of(team)["escalated"] == ("1", True)
    assert charts_of(team)["Open load per moderator"] == {"ana@example.test": 2, "bo@example.test": 1, "unassigned": 1}


def test_urgent_is_drawn_red_and_every_day_has_its_date(app) -> None:
    boss = make_user("boss@example.test", role="admin")
    long_name = make_user("a.very.long.moderator.address@staff.example.test")
    make_ticket(assignee=long_name, priority="urgent")
    page = dashboard_page(app.test_client(), bearer(app, boss))
    bars = dict(re.findall(r'fill="(#[0-9a-f]{6})" rx="2"><title>(urgent|low): \d+</title>', page)[::-1])
    assert {label: colour for colour, label in bars.items()} == {"urgent": "#c2414b", "low": "#8a94a6"}
    per_day = SECTION.findall(page)[0][1]
    days = re.findall(r'<text class="day"[^>]*>(\d\d)</text>', per_day)
    assert len(days) == 14 and days[-1] == f"{utcnow().day:02d}"
    assert "a.very.long.moderator.address@staff.example.test</text>" in page  # drawn whole, never cut


def test_pages_show_the_stored_figures_and_the_daemon_refreshes_them(app) -> None:
    moderator = make_user("ana@example.test", role="admin")
    make_ticket(assignee=moderator, category="network")
    client = app.test_client()
    headers = bearer(app, moderator)
    assert kpis_of(dashboard_page(client, headers))["open tickets"] == ("1", False)  # none stored: computed

    make_ticket(assignee=moderator, category="billing")
    stale = dashboard_page(client, headers)  # no request reads every open ticket while stored figures are fresh
    assert kpis_of(stale)["open tickets"] == ("1", False)

    assert next_pass()  # a ticket was written since: the job recomputes
    assert not next_pass(2)  # nothing written since: it leaves them
    fresh = dashboard_page(client, headers)
    assert kpis_of(fresh)["open tickets"] == ("2", False)
    assert charts_of(fresh)["Open by category"] == {"network": 1, "billing": 1}


def test_a_page_computes_the_figures_itself_when_no_daemon_keeps_them(app) -> None:
    moderator = make_user("ana@example.test", role="admin")
    make_ticket(assignee=moderator)
    client = app.test_client()
    headers = bearer(app, moderator)
    dashboard_page(client, headers)
    make_ticket(assignee=moderator)
    long_ago = utcnow() - figures.SERVE_FOR - dt.timedelta(seconds=1)
    Ticket._get_db()[COLLECTION].update_one({"_id": figures.SNAPSHOT}, {"$set": {"computed_at": long_ago}})
    assert kpis_of(dashboard_page(client, headers))["open tickets"] == ("2", False)


def test_the_job_reads_no_tickets_while_no_one_looks_at_the_dashboard(app) -> None:
    admin = make_user("ana@example.test", role="admin")
    make_ticket(assignee=admin)
    assert not next_pass()  # no page has shown the figures yet
    assert Ticket._get_db()[COLLECTION].count_documents({}) == 0

    dashboard_page(app.test_client(), bearer(app, admin))
    make_ticket(assignee=admin)
    assert next_pass()  # shown a moment ago, and a ticket was written since

    make_ticket(assignee=admin)
    no_one_since = utcnow() + figures.WATCHED + dt.timedelta(seconds=figures.REFRESH_SECONDS)
    assert not figures.refresh(no_one_since)
