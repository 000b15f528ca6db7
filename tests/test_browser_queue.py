# ruff: noqa: F811 - pytest fixtures imported from tests.web_support
"""The queue and the ticket page in a real headless Chromium: sort, saved filters and counts, the timeline,
an admin's reassignment from the page, and an escalation's email to the admins in the SMTP sink.
Screenshots at 1280x800 are written to .cache/artefacts/ (docs/queue.png and docs/ticket.png come from there)."""

from __future__ import annotations

import datetime as dt
import pathlib
from collections.abc import Iterator

import pytest

from daemon.outbox import send_due
from models import AuditEvent, Ticket, utcnow
from tests.web_support import PASSWORD, app, make_ticket, make_user, served  # noqa: F401
from webadmin import ticket_actions

pytestmark = pytest.mark.browser
ARTEFACTS = pathlib.Path(__file__).resolve().parent.parent / ".cache" / "artefacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _sign_in(page, base: str, email: str) -> None:  # noqa: ANN001
    page.goto(f"{base}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def _shot(page, name: str) -> None:  # noqa: ANN001
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / name))


def _rows(page) -> list[int]:  # noqa: ANN001
    return [
        int(n)
        for n in page.locator("table.queue tbody tr[data-number]").evaluate_all(
            "rows => rows.map(r => r.dataset.number)"
        )
    ]


def _a_days_work(settings):  # noqa: ANN001, ANN202
    now = utcnow()
    admin = make_user("ada@example.test", role="admin")
    make_user("bea@example.test", role="admin")
    vpn = make_user("mo@example.test", skills=("vpn", "sso"))
    billing = make_user("bill@example.test", skills=("billing",))
    specs = [
        ("VPN drops every hour since Monday", "ana@acme.example", "high", -3, None, "open", dict(sla_breached=True)),
        ("Invoice charged twice in March", "li@shop.example", "urgent", 1, billing, "open", {}),
        ("Cannot sign in with SSO", "sam@corp.example", "medium", 1, vpn, "open", {}),
        ("Refund for cancelled plan", "kim@home.example", "medium", 5, billing, "pending", {}),
        ("Printer queue stuck", "joe@office.example", "low", 30, None, "new", {}),
        ("Data export is empty", "eva@data.example", "high", 2, admin, "escalated", dict(escalated=True)),
    ]
    tickets = []
    for subject, requester, priority, hours, assignee, status, extra in specs:
        tickets.append(
            make_ticket(
                subject=subject,
                requester=requester,
                priority=priority,
                assignee=assignee,
                status=status,
                sla_due_at=now + dt.timedelta(hours=hours),
                required_skills=("vpn",) if "VPN" in subject else (),
                **extra,
            )
        )
    ticket_actions.reply(tickets[3], billing, "We refunded it; please confirm.", settings)
    Ticket.objects(id=tickets[2].id).update_one(set__first_response_at=now, set__last_reply_at=now)
    Ticket.objects(id=tickets[2].id).update_one(set__last_message_at=now + dt.timedelta(minutes=5))
    return tickets, vpn


def test_queue_sorts_by_deadline_and_saved_filters_count(app, settings, browser) -> None:
    from playwright.sync_api import expect

    tickets, _ = _a_days_work(settings)
    late, invoice, sso, refund, printer, export = tickets
    with served(app) as base:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        _sign_in(page, base, "ada@example.test")
        page.goto(f"{base}/queue")
        # overdue first, then by deadline; the two due in an hour: urgent before medium
        assert _rows(page) == [late.number, invoice.number, sso.number, export.number, refund.number, printer.number]
        assert "overdue" in page.locator(f"tr[data-number='{late.number}']").get_attribute("class")
        assert page.locator(f"tr[data-number='{sso.number}'] td.replied").inner_text().strip() == "replied"
        assert page.title() == "Queue · Helpdesk"
        expect(page.locator("#queue-total")).to_have_text("6")  # fetched after the page is shown
        counts = {
            v: page.locator(f"a[data-view='{v}'] .count").inner_text()
            for v in ("all", "mine", "unassigned", "overdue", "escalated", "waiting")
        }
        assert counts == {"all": "6", "mine": "1", "unassigned": "2", "overdue": "1", "escalated": "1", "waiting": "1"}
        _shot(page, "queue.png")
        page.click("a[data-view='overdue']")
        page.wait_for_url("**view=overdue**")
        assert _rows(page) == [late.number]
        page.click("a[data-view='waiting']")
        page.wait_for_url("**view=waiting**")
        assert _rows(page) == [refund.number]
        page.click("a[data-view='all']")
        page.select_option("select[name=priority]", "medium")
        page.click("form.filters button[type=submit]")
        page.wait_for_url("**priority=medium**")
        assert _rows(page) == [sso.number, refund.number]
        expect(page.locator("#queue-total")).to_have_text("2")  # the filtered list's count
        context.close()


def test_admin_reads_the_timeline_and_reassigns_from_the_ticket_page(app, settings, browser) -> None:
    tickets, vpn = _a_days_work(settings)
    late = tickets[0]
    Ticket.objects(id=late.id).update_one(
        set__category="network", set__triage__state="done", set__triage__provider="local",
        set__triage__completed_at=utcnow(), set__summary="The customer's VPN disconnects every hour.",
    )  # fmt: skip
    AuditEvent(
        actor="system:triage", action="escalate", ticket_number=late.number, detail="assignee nobody",
        reason="no active moderator covers vpn, sso",
    ).save()  # fmt: skip
    late.reload()
    ticket_actions.add_note(late, vpn, "Customer is on client 5.1; asked for logs.", settings)
    ticket_actions.change_status(late, vpn, "pending", settings)
    with served(app) as base:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        _sign_in(page, base, "ada@example.test")
        page.goto(f"{base}/tickets/{late.number}")
        timeline = page.locator("#timeline").inner_text()
        assert "created by an email from ana@acme.example" in timeline
        assert "status open -> pending by mo@example.test" in timeline
        assert "internal note" in timeline
        options = page.locator("select[name=assignee] option").all_inner_texts()
        assert options[0].startswith("mo@example.test") and "fits" in options[0]  # the vpn moderator first
        _shot(page, "ticket.png")
        page.select_option("select[name=assignee]", "mo@example.test")
        page.fill("form:has(button[name=reassign]) input[name=reason]", "vpn expert")
        page.click("button[name=reassign]")
        page.wait_for_selector("text=Assigned to mo@example.test.")
        assert "assigned nobody -> mo@example.test by ada@example.test" in page.locator("#timeline").inner_text()
        assert "why: vpn expert" in page.locator("#timeline").inner_text()
        context.close()
    late.reload()
    assert late.assignee == vpn
    assert AuditEvent.objects(action="assign", ticket_number=late.number, actor="ada@example.test").get().reason == (
        "vpn expert"
    )


def test_moderator_escalates_and_every_admin_gets_the_email(app, settings, mail, browser) -> None:
    tickets, vpn = _a_days_work(settings)
    sso = tickets[2]
    with served(app) as base:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        _sign_in(page, base, "mo@example.test")
        page.goto(f"{base}/tickets/{sso.number}")
        page.fill("input[name=reason] >> nth=-1", "customer threatens to cancel")
        page.click("button.danger")
        page.wait_for_selector("text=the admins were emailed")
        assert page.url.endswith("/queue")  # it is an admin's ticket now
        context.close()
    assert send_due(settings) >= 2  # the daemon's outbox job sends what the panel queued
    sent = mail.wait_for_sink(2)
    alerts = {m["To"]: m for m in sent if "Escalated" in m["Subject"]}
    assert sorted(alerts) == ["ada@example.test", "bea@example.test"]
    body = alerts["bea@example.test"].get_content()
    assert "customer threatens to cancel" in body and "escalated by mo@example.test" in body
    assert f"{settings.app_url}/tickets/{sso.number}" in body
