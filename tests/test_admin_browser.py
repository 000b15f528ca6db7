# ruff: noqa: F811 - pytest fixtures imported from tests.web_support
"""The dashboard and Flask-Admin in a real headless Chromium at 1280x800, as a moderator and as an admin.

Each test writes a screenshot (the pytest tmp folder's `artefacts/`, printed) of what it checked: whole
labels, colours by meaning, a date under every bar, lists that fit the window, human timestamps, a search
box with a real placeholder, and skills as checkboxes.
"""

from __future__ import annotations

import datetime as dt
import pathlib
import re
from collections.abc import Iterator

import pytest

from models import Skill, User, utcnow
from tests.web_support import PASSWORD, app, make_ticket, make_user, served  # noqa: F401

pytestmark = pytest.mark.browser
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 800}
LONG_ADDRESS = "alexandra.konstantinopoulou@support-team.example.test"

# Labels of the horizontal bar charts that lie (partly) outside their chart: a cut-off label.
CUT_LABELS = """() => {
  const cut = [];
  for (const svg of document.querySelectorAll('svg.chart')) {
    const box = svg.getBoundingClientRect();
    for (const text of svg.querySelectorAll('text')) {
      const r = text.getBoundingClientRect();
      if (r.left < box.left - 0.5 || r.right > box.right + 0.5) cut.push(text.textContent);
    }
  }
  return cut;
}"""
WIDER_THAN_WINDOW = "() => document.documentElement.scrollWidth > window.innerWidth"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    folder = tmp_path_factory.getbasetemp() / "artefacts"
    folder.mkdir(exist_ok=True)
    return folder


def signed_in_page(browser, base: str, email: str):  # noqa: ANN001,ANN201 - Playwright objects
    page = browser.new_context(viewport=VIEWPORT).new_page()
    page.goto(f"{base}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return page


def shoot(page, artefacts: pathlib.Path, name: str) -> None:  # noqa: ANN001
    path = artefacts / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def some_tickets() -> tuple[User, User]:
    ana = make_user(LONG_ADDRESS, skills=("vpn",))
    bo = make_user("bo@example.test", skills=("billing",))
    late = utcnow() - dt.timedelta(hours=2)
    for days_ago in range(14):
        created = utcnow() - dt.timedelta(days=days_ago)
        make_ticket(assignee=ana, priority="urgent", category="network", created_at=created)
    make_ticket(assignee=ana, priority="low", category="network", sla_due_at=late)
    make_ticket(assignee=ana, status="escalated", escalated=True, priority="high", category="hardware")
    make_ticket(assignee=bo, priority="medium", category="billing", sla_due_at=late)
    make_ticket(priority="high", category="a category with a rather long name")
    return ana, bo


def bar_fill(page, label: str) -> str:  # noqa: ANN001
    return page.eval_on_selector(f"svg.chart rect:has(title:text-is('{label}'))", "r => r.getAttribute('fill')")


def test_dashboard_as_a_moderator_shows_their_own_figures(app, browser, artefacts) -> None:
    some_tickets()
    with served(app) as base:
        page = signed_in_page(browser, base, LONG_ADDRESS)
        page.goto(f"{base}/dashboard")
        kpis = page.inner_text(".kpis")
        assert re.search(r"16\s+my open tickets", kpis), kpis
        assert re.search(r"1\s+mine escalated", kpis), kpis
        assert "Open load per moderator" not in page.content()  # team figures are for admins
        assert bar_fill(page, "urgent: 14") == "#c2414b"  # urgent is red
        days = page.locator("svg.chart text.day").all_text_contents()
        assert len(days) == 14 and days[-1] == f"{utcnow().day:02d}"  # a date under every bar, today's too
        assert page.evaluate(CUT_LABELS) == []
        assert not page.evaluate(WIDER_THAN_WINDOW)
        shoot(page, artefacts, "dashboard-moderator")


def test_dashboard_as_an_admin_shows_the_team(app, browser, artefacts) -> None:
    some_tickets()
    make_user("boss@example.test", role="admin")
    with served(app) as base:
        page = signed_in_page(browser, base, "boss@example.test")
        page.goto(f"{base}/dashboard")
        kpis = page.inner_text(".kpis")
        assert re.search(r"18\s+open tickets", kpis), kpis
        assert re.search(r"1\s+escalated", kpis), kpis
        load = page.locator("section:has(h2:text-is('Open load per moderator')) svg text").all_text_contents()
        assert LONG_ADDRESS in load  # the whole address, never cut
        assert page.evaluate(CUT_LABELS) == []
        assert bar_fill(page, "urgent: 14") == "#c2414b" and bar_fill(page, "low: 1") != "#c2414b"
        assert not page.evaluate(WIDER_THAN_WINDOW)
        shoot(page, artefacts, "dashboard-admin")


def test_flask_admin_ticket_list_fits_1280_with_human_times(app, browser, artefacts) -> None:
    make_user("boss@example.test", role="admin")
    ana = make_user(LONG_ADDRESS)
    for i in range(30):
        make_ticket(
            subject=f"Printer on floor {i} prints every page twice and then jams with an error nobody understands",
            requester=f"someone.with.a.long.address.{i}@customer-company.example.test",
            assignee=ana,
        )
    with served(app) as base:
        page = signed_in_page(browser, base, "boss@example.test")
        page.goto(f"{base}/admin/tickets_admin/")
        assert not page.evaluate(WIDER_THAN_WINDOW)
        created = page.locator("td.col-created_at").first.inner_text().strip()
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", created), created  # no seconds, no microseconds
        placeholder = page.get_attribute("input[name=search]", "placeholder")
        assert placeholder and "None" not in placeholder
        shoot(page, artefacts, "admin-tickets")
        page.fill("input[name=search]", "Printer")
        page.press("input[name=search]", "Enter")
        page.wait_for_load_state()
        assert page.locator("td.col-subject").count() == 25  # one page of hits, newest first
        assert page.get_attribute("input[name=search]", "value") == "Printer"


def test_flask_admin_skills_are_checkboxes(app, browser, artefacts) -> None:
    make_user("boss@example.test", role="admin")
    for name in ("billing", "vpn", "printers"):
        Skill(name=name).save()
    ana = make_user("ana@example.test", skills=("vpn",))
    with served(app) as base:
        page = signed_in_page(browser, base, "boss@example.test")
        page.goto(f"{base}/admin/users/edit/?id={ana.id}")
        boxes = page.locator("ul.skill-checks input[type=checkbox]")
        assert sorted(boxes.evaluate_all("bs => bs.map(b => b.value)")) == ["billing", "printers", "vpn"]
        assert page.is_checked("ul.skill-checks input[value=vpn]")
        assert not page.evaluate(WIDER_THAN_WINDOW)
        shoot(page, artefacts, "admin-user-skills")
        page.check("ul.skill-checks input[value=billing]")
        page.fill("input[name=reason]", "covers billing now")
        page.click("input[type=submit][value=Save]")
        page.wait_for_load_state()
    assert sorted(User.objects.get(id=ana.id).skills) == ["billing", "vpn"]
