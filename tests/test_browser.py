# ruff: noqa: F811 - pytest fixtures imported from tests.web_support
"""The panel in a real headless Chromium: reply by email, reassign in Flask-Admin, inert hostile HTML, CSRF."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from daemon.outbox import send_due
from models import AuditEvent, Ticket, User
from tests.support import make_email
from tests.web_support import PASSWORD, app, make_user, served  # noqa: F401
from webadmin import ticket_actions

pytestmark = pytest.mark.browser
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _ingest(settings, message) -> Ticket:  # noqa: ANN001
    from daemon.ingest import ingest

    ingest(message.as_bytes(), settings, send_ack=False)
    return Ticket.objects(source_message_id=message["Message-ID"]).get()


def _sign_in(page, base: str, email: str) -> None:  # noqa: ANN001
    page.goto(f"{base}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def test_moderator_replies_and_the_email_is_threaded(app, settings, mail, browser) -> None:
    moderator = make_user("mod@example.test", skills=("vpn",))
    admin = make_user("admin@example.test", role="admin")
    customer_email = make_email(subject="VPN keeps dropping", body="It drops every hour since Monday.")
    ticket = _ingest(settings, customer_email)
    ticket_actions.assign(ticket, admin, moderator, "vpn expert", settings)
    with served(app) as base:
        context = browser.new_context()
        page = context.new_page()
        _sign_in(page, base, "mod@example.test")
        page.wait_for_url(f"{base}/queue")
        page.click("text=VPN keeps dropping")
        page.wait_for_url(f"{base}/tickets/{ticket.number}")
        assert "It drops every hour since Monday." in page.content()
        page.fill("textarea[name=text] >> nth=0", "Please update the client to 5.2.")
        page.click("button[name=send]")
        page.wait_for_selector("text=Reply sent to the requester.")
        context.close()
    assert send_due(settings) == 1  # the daemon's outbox job sends what the panel queued
    [sent] = mail.wait_for_sink(1)
    assert sent["In-Reply-To"] == customer_email["Message-ID"]
    assert customer_email["Message-ID"] in sent["References"]
    assert sent["To"] == "customer@example.test"
    assert "Please update the client to 5.2." in sent.get_content()


def test_admin_reassigns_in_flask_admin(app, settings, browser) -> None:
    make_user("admin@example.test", role="admin")
    first = make_user("first@example.test", skills=("billing",))
    make_user("second@example.test", skills=("billing",))
    ticket = _ingest(settings, make_email(subject="Invoice twice", sender="payer@example.test"))
    ticket_actions.assign(ticket, first, first, "took it", settings)
    with served(app) as base:
        context = browser.new_context()
        page = context.new_page()
        _sign_in(page, base, "admin@example.test")
        page.wait_for_url(f"{base}/dashboard")
        page.goto(f"{base}/admin/tickets_admin/edit/?id={ticket.id}")
        page.select_option("select#assign_to", "second@example.test")
        page.fill("input#reason", "first is on holiday")
        page.click("input[type=submit][value=Save]")
        page.wait_for_url(f"{base}/admin/tickets_admin/**")
        context.close()
    ticket.reload()
    assert ticket.assignee.email == "second@example.test"
    event = AuditEvent.objects(action="assign", ticket_number=ticket.number, actor="admin@example.test").get()
    assert event.reason == "first is on holiday"
    assert event.detail == "first@example.test -> second@example.test"


def test_hostile_email_html_is_inert(app, settings, browser) -> None:
    moderator = make_user("mod@example.test")
    message = make_email(subject="Look at this", sender="attacker@example.test")
    message.add_alternative(
        '<p id="visible">Hello</p><script>alert("xss")</script><img src="x" onerror="alert(\'boom\')">'
        '<svg onload="alert(1)"></svg><a href="javascript:alert(2)">click</a>',
        subtype="html",
    )
    ticket = _ingest(settings, message)
    Ticket.objects(id=ticket.id).update_one(set__assignee=moderator.id)
    # Defence in depth: even HTML that slipped past ingestion unsanitised must render inert.
    from models import TicketMessage

    TicketMessage.objects(ticket_number=ticket.number, kind="inbound").update(
        set__html='<p>RAW-MARKER</p><script>alert("raw")</script><img src=x onerror="alert(\'raw\')">'
    )
    dialogs: list[str] = []
    with served(app) as base:
        context = browser.new_context()
        page = context.new_page()
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        _sign_in(page, base, "mod@example.test")
        page.wait_for_url(f"{base}/queue")
        page.goto(f"{base}/tickets/{ticket.number}")
        page.wait_for_selector("text=RAW-MARKER")
        page.wait_for_timeout(500)
        assert page.locator("main script").count() == 0
        assert page.locator("[onerror], [onload]").count() == 0
        context.close()
    assert dialogs == []


def test_cookie_post_without_csrf_token_is_refused_in_the_browser(app, settings, browser) -> None:
    moderator = make_user("mod@example.test")
    ticket = _ingest(settings, make_email(subject="Password reset"))
    Ticket.objects(id=ticket.id).update_one(set__assignee=moderator.id)
    with served(app) as base:
        context = browser.new_context()
        page = context.new_page()
        _sign_in(page, base, "mod@example.test")
        page.wait_for_url(f"{base}/queue")
        refused = context.request.post(f"{base}/tickets/{ticket.number}/note", form={"text": "forged"})
        assert refused.status == 403
        api_refused = context.request.post(f"{base}/api/tickets/{ticket.number}/notes", data={"text": "forged"})
        assert api_refused.status == 401
        context.close()
    from models import TicketMessage

    assert TicketMessage.objects(ticket_number=ticket.number, kind="note").count() == 0
    assert User.objects(email="mod@example.test").get().active
