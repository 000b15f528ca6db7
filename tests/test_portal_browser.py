# ruff: noqa: F811 - pytest fixtures imported from tests.web_support
"""The customer's side in a real headless Chromium: form, confirmation email, portal, reply with an attachment
that the moderator sees; expired and reused links; one customer cannot reach another's tickets."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from config import Settings
from daemon.outbox import send_due
from daemon.web_intake import ingest_web_submissions
from models import OutboundEmail, Ticket
from models.submissions import WebSubmission
from tests.portal_support import link_in
from tests.test_browser import CHROMIUM_ARGS, browser  # noqa: F401
from tests.web_support import PASSWORD, app, make_user, served  # noqa: F401
from webadmin import ticket_actions

pytestmark = pytest.mark.browser


@contextmanager
def daemon_jobs(settings: Settings) -> Iterator[None]:
    """The daemon's outbox and web-intake jobs, every 0.2 s in a thread (as the scheduler runs them)."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(0.2):
            ingest_web_submissions(settings)
            send_due(settings)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def _fill_form(page, base: str, email: str, subject: str) -> None:  # noqa: ANN001
    page.goto(f"{base}/portal/new")
    page.fill("input[name=name]", "Ada Lovelace")
    page.fill("input[name=email]", email)
    page.fill("input[name=subject]", subject)
    page.fill("textarea[name=text]", "The office printer shows error 42.")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Check your email")


def _email_to(mail, address: str, count: int):  # noqa: ANN001,ANN202
    return [m for m in mail.wait_for_sink(count) if m["To"] == address]


def test_customer_submits_confirms_follows_and_replies(app, settings, mail, browser, tmp_path) -> None:
    moderator = make_user("mod@example.test")
    with served(app) as base, daemon_jobs(settings):
        customer = browser.new_context()
        page = customer.new_page()
        _fill_form(page, base, "ada@customer.test", "Printer offline")
        [confirmation] = mail.wait_for_sink(1)
        page.goto(base + link_in(confirmation, "/portal/confirm/"))
        page.click("button[name=confirm]")
        page.wait_for_selector("text=Request received")
        number = WebSubmission.objects.get().ticket_number
        ack = mail.wait_for_sink(2)[1]  # the acknowledgement, sent by the daemon after ingesting it
        assert ack["Subject"].startswith(f"[#{number}]")
        page.click("text=Go to your requests")
        page.wait_for_selector(f"text=#{number}")
        assert "Printer offline" in page.content()
        page.click("text=Printer offline")
        page.wait_for_selector("text=error 42")

        ticket = Ticket.objects.get(number=number)
        ticket_actions.assign(ticket, moderator, moderator, "printers", settings)
        log = tmp_path / "printer.log"
        log.write_text("E42 paper path\n")
        page.fill("textarea[name=text]", "The log is attached.")
        page.set_input_files("input[name=attachments]", str(log))
        page.click("button[name=send]")
        page.wait_for_selector("text=Your reply was sent")
        for _ in range(50):  # the daemon ingests it within about half a second
            page.reload()
            if page.locator("text=The log is attached.").count():
                break
        assert page.locator("a", has_text="printer.log").count() == 1
        customer.close()

        staff = browser.new_context()
        panel = staff.new_page()
        panel.goto(f"{base}/login")
        panel.fill("input[name=email]", "mod@example.test")
        panel.fill("input[name=password]", PASSWORD)
        panel.click("button[type=submit]")
        panel.wait_for_url(f"{base}/queue")
        panel.goto(f"{base}/tickets/{number}")
        panel.wait_for_selector("text=The log is attached.")
        assert panel.locator("a", has_text="printer.log").count() == 1
        staff.close()
    assert OutboundEmail.objects(kind="notification", to="mod@example.test", ticket_number=number).count() >= 1


def test_expired_and_reused_links_in_the_browser(app, settings, mail, browser) -> None:
    with served(app) as base, daemon_jobs(settings):
        context = browser.new_context()
        page = context.new_page()
        _fill_form(page, base, "ada@customer.test", "First")
        _fill_form(page, base, "ada@customer.test", "Second")
        first, second = mail.wait_for_sink(2)
        page.goto(base + link_in(first, "/portal/confirm/"))
        page.click("button[name=confirm]")
        page.wait_for_selector("text=Request received")
        page.goto(base + link_in(first, "/portal/confirm/"))
        page.wait_for_selector("text=Link already used")
        WebSubmission.objects(state="unconfirmed").update(set__expires_at=WebSubmission.objects.first().created_at)
        response = page.goto(base + link_in(second, "/portal/confirm/"))
        assert response.status == 410
        page.wait_for_selector("text=Link expired")
        context.close()
    assert WebSubmission.objects(state="unconfirmed").count() == 1
    assert Ticket.objects.count() == 1


def test_a_second_customer_cannot_reach_the_first_ones_tickets(app, settings, mail, browser) -> None:
    with served(app) as base, daemon_jobs(settings):
        first = browser.new_context()
        page = first.new_page()
        _fill_form(page, base, "ada@customer.test", "ADA-PRIVATE")
        page.goto(base + link_in(mail.wait_for_sink(1)[0], "/portal/confirm/"))
        page.click("button[name=confirm]")
        page.wait_for_selector("text=Request received")
        number = WebSubmission.objects.get().ticket_number
        first.close()

        make_user("bob@customer.test", role="user", password=None)  # a known customer
        second = browser.new_context()
        bob = second.new_page()
        bob.goto(f"{base}/portal/sign-in")
        bob.fill("input[name=email]", "bob@customer.test")
        bob.click("button[type=submit]")
        bob.wait_for_selector("text=Check your email")
        sign_in = [m for m in mail.wait_for_sink(3) if m["To"] == "bob@customer.test"][0]
        bob.goto(base + link_in(sign_in, "/portal/sign-in/"))
        bob.click("button[name=sign_in]")
        bob.wait_for_url(f"{base}/portal/")
        assert "ADA-PRIVATE" not in bob.content()
        response = bob.goto(f"{base}/portal/tickets/{number}")
        assert response.status == 404 and "ADA-PRIVATE" not in bob.content()
        second.close()
