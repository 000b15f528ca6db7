# ruff: noqa: F811 - pytest fixtures imported from tests.web_support
"""Several support mailboxes end to end (issue 12): the daemon reads each in its own loop, a failing one is
reported and retried while the others go on, tickets remember the address they came in on and get its
defaults, and every email about a ticket goes out From that address. Real Dovecot, real SMTP sink."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest
from flask import Flask

from config import Settings, to_environ
from daemon.mailboxes import MailboxSupervisor
from daemon.outbox import send_due
from daemon.poller import run_mailbox_loop
from daemon.scheduler import run_once
from mailauth.sealed import new_key
from models import MailboxCursor, OutboundEmail, Ticket, queue_email, utcnow
from models.mailboxes import SupportMailbox
from tests.conftest import ROOT, make_settings
from tests.daemon_support import raw_email
from tests.support import SUPPORT, MailStack
from tests.web_support import bearer, cookie_login, make_user
from triage.provider import TriageResult
from triage.service import result_changes
from webadmin import create_app

KEY = new_key()
BILLING = "billing@example.test"  # read through Dovecot's user "moderator@example.test"
BILLING_LOGIN = "moderator@example.test"
BROKEN = "broken@example.test"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def add_mailbox(address: str, login: str, password: str, port: int, **fields: object) -> SupportMailbox:
    mailbox = SupportMailbox(
        address=address, imap_host="127.0.0.1", imap_port=port, imap_security="none", imap_user=login, **fields
    )
    mailbox.set_secret(password, KEY)
    return mailbox.save()


@pytest.fixture()
def base(db: str, mail: MailStack) -> Settings:
    mail.doveadm("expunge", "-u", BILLING_LOGIN, "mailbox", "*", "all")
    return make_settings(db, mail, mailbox_secret_key=KEY)


def billing(mail: MailStack) -> SupportMailbox:
    return add_mailbox(
        BILLING,
        BILLING_LOGIN,
        "password",
        mail.imap_port,
        name="Billing",
        default_category="billing",
        default_skills=["payments"],
        ack_signature="Your billing team\nExample Ltd",
    )


def text_of(message) -> str:  # noqa: ANN001 - an EmailMessage from the sink
    return message.get_content().replace("\r\n", "\n")  # Dovecot and the sink hand back CRLF


def wait_until(condition: Callable[[], object], timeout: float = 45.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def health(app: Flask) -> dict:
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    return response.get_json()


def test_run_once_reads_every_mailbox_and_a_refused_login_stops_none_of_the_others(
    base: Settings, mail: MailStack
) -> None:
    billing(mail)
    add_mailbox(BROKEN, "customer@example.test", "Wrong-Secret-123", mail.imap_port)
    add_mailbox("off@example.test", "customer@example.test", "password", mail.imap_port, enabled=False)
    mail.deliver(raw_email(subject="Where is my order?", to=SUPPORT))
    mail.deliver(raw_email(subject="Charged twice", to=BILLING), user=BILLING_LOGIN)

    summary = run_once(base)

    assert summary["mailbox"] == {"Created": 1}
    assert summary[f"mailbox:{BILLING}"] == {"Created": 1}
    assert str(summary[f"mailbox:{BROKEN}"]).startswith("failed: LoginError")
    assert "mailbox:off@example.test" not in summary  # disabled: not read
    tickets = {t.subject: t for t in Ticket.objects}
    assert tickets["Where is my order?"].mailbox == ""
    charged = tickets["Charged twice"]
    assert charged.mailbox == BILLING
    assert "payments" in charged.required_skills  # the mailbox's default skill stays through triage
    acks = {m["Subject"].split("] ", 1)[1]: m for m in mail.wait_for_sink(2)}
    assert acks["Where is my order?"]["From"] == SUPPORT
    assert acks["Charged twice"]["From"] == BILLING
    assert text_of(acks["Charged twice"]).rstrip().endswith("-- \nYour billing team\nExample Ltd")
    assert "billing team" not in text_of(acks["Where is my order?"])

    state = {m["address"]: m for m in health(create_app(base))["mailboxes"]}
    assert state[SUPPORT]["last_error"] is None and state[BILLING]["last_error"] is None
    assert state[BILLING]["last_poll_age_seconds"] < 30
    assert "LoginError" in state[BROKEN]["last_error"] and "Wrong-Secret-123" not in state[BROKEN]["last_error"]
    assert state[BROKEN]["last_poll_at"] is None
    assert state["off@example.test"]["enabled"] is False
    assert health(create_app(base))["status"] == "degraded"


def test_two_mailboxes_ingest_at_once_while_an_unreachable_one_is_retried(base: Settings, mail: MailStack) -> None:
    billing(mail)
    add_mailbox(BROKEN, "customer@example.test", "password", closed_port())
    app = create_app(base)  # before the loops start: create_app reconnects the database, under their feet
    stop_base, stop = threading.Event(), threading.Event()
    supervisor = MailboxSupervisor(base, stop)
    own = threading.Thread(target=run_mailbox_loop, args=[base, stop_base], daemon=True)
    own.start()
    supervisor.sync()
    try:
        assert set(supervisor.loops) == {BILLING, BROKEN}
        for n in range(3):  # each customer once: acknowledgements are limited per sender and hour
            mail.deliver(
                raw_email(subject=f"Invoice question {n}", to=BILLING, sender=f"a{n}@example.org"), user=BILLING_LOGIN
            )
            mail.deliver(raw_email(subject=f"Login question {n}", to=SUPPORT, sender=f"b{n}@example.org"))
        wait_until(lambda: Ticket.objects.count() == 6)
        sent = mail.wait_for_sink(6, timeout=45)  # Dovecot slows logins after a refused one, by up to 15 s
        senders = sorted((m["Subject"].split("] ", 1)[1], m["From"]) for m in sent)
        assert senders == sorted(
            [(f"Invoice question {n}", BILLING) for n in range(3)]
            + [(f"Login question {n}", SUPPORT) for n in range(3)]
        )
        assert {t.mailbox for t in Ticket.objects(subject__startswith="Invoice")} == {BILLING}
        assert {t.category for t in Ticket.objects(subject__startswith="Invoice")} == {"billing"}  # not triaged yet
        broken = SupportMailbox.objects.get(address=BROKEN)
        wait_until(lambda: MailboxCursor.objects(mailbox=broken.cursor_name, last_error__ne=None).first())
        state = {m["address"]: m for m in health(app)["mailboxes"]}
        assert "ConnectionRefusedError" in state[BROKEN]["last_error"]
        assert state[BILLING]["last_error"] is None and state[BILLING]["last_poll_at"] is not None

        # the admin disables the broken mailbox and adds another: picked up without a restart
        SupportMailbox.objects(address=BROKEN).update_one(set__enabled=False, set__updated_at=utcnow())
        add_mailbox("sales@example.test", "customer@example.test", "password", mail.imap_port)
        mail.doveadm("expunge", "-u", "customer@example.test", "mailbox", "*", "all")
        supervisor.sync()
        assert set(supervisor.loops) == {BILLING, "sales@example.test"}
        licence = raw_email(subject="Bulk licence", to="sales@example.test", sender="c@example.org")
        mail.deliver(licence, user="customer@example.test")
        wait_until(lambda: Ticket.objects(mailbox="sales@example.test").count() == 1)
        assert health(app)["status"] == "ok"  # the disabled one is no longer a problem
    finally:
        stop.set()
        stop_base.set()
        supervisor.stop_all()
        own.join(10)
    assert not own.is_alive() and supervisor.loops == {}


def test_a_reply_and_a_notification_about_a_second_mailbox_ticket_leave_from_its_address(
    base: Settings, mail: MailStack
) -> None:
    billing(mail)
    mail.deliver(raw_email(subject="Refund please", to=BILLING), user=BILLING_LOGIN)
    mail.deliver(raw_email(subject="Password reset", to=SUPPORT))
    run_once(base)
    mail.wait_for_sink(2)
    for path in mail.sink_dir.glob("*"):
        path.unlink()
    refund, reset = Ticket.objects.get(subject="Refund please"), Ticket.objects.get(subject="Password reset")
    app = create_app(base)
    app.config["TESTING"] = True
    moderator = make_user("agent@example.test", role="admin")
    client = app.test_client()
    for ticket in (refund, reset):
        response = client.post(
            f"/api/tickets/{ticket.number}/replies", headers=bearer(app, moderator), json={"text": "Done, sorry."}
        )
        assert response.status_code == 201, response.get_json()
    headers = bearer(app, moderator)
    assert client.get(f"/api/tickets/{refund.number}", headers=headers).get_json()["mailbox"] == BILLING
    listed = client.get("/api/tickets", headers=headers).get_json()["items"]
    assert {t["number"]: t["mailbox"] for t in listed} == {refund.number: BILLING, reset.number: None}
    queue_email(  # queued without a mailbox (as routing's notifications are): its ticket's address decides
        kind="notification",
        to=["agent@example.test"],
        subject=f"[#{refund.number}] Assigned to you",
        text="A ticket for you.",
        domain="example.test",
        ticket_number=refund.number,
    )
    assert OutboundEmail.objects(kind="reply", ticket_number=refund.number).get().mailbox == BILLING
    assert send_due(base) == 3
    by_subject = {m["Subject"]: m for m in mail.wait_for_sink(3)}
    assert by_subject[f"Re: [#{refund.number}] Refund please"]["From"] == BILLING
    assert by_subject[f"Re: [#{refund.number}] Refund please"]["Message-ID"].endswith("@example.test>")
    assert by_subject[f"Re: [#{reset.number}] Password reset"]["From"] == SUPPORT
    assert by_subject[f"[#{refund.number}] Assigned to you"]["From"] == BILLING
    assert "Done, sorry." in text_of(by_subject[f"Re: [#{refund.number}] Refund please"])
    cookie_login(client, "agent@example.test")
    page = client.get(f"/tickets/{refund.number}").get_data(as_text=True)
    assert f'<span class="mailbox">to {BILLING}</span>' in page and f"(from {BILLING})" in page
    assert 'class="mailbox"' not in client.get(f"/tickets/{reset.number}").get_data(as_text=True)


def test_a_mailbox_whose_credential_does_not_open_fails_only_its_own_emails(base: Settings, mail: MailStack) -> None:
    billing(mail)
    run_once(base)
    mailbox = SupportMailbox.objects.get(address=BILLING)
    mailbox.set_secret("password", new_key())  # sealed with another key: MAILBOX_SECRET_KEY no longer opens it
    mailbox.updated_at = utcnow()
    mailbox.save()
    common = {"kind": "notification", "to": ["someone@example.test"], "text": "x", "domain": "example.test"}
    queue_email(subject="from billing", mailbox=BILLING, **common)
    queue_email(subject="from support", mailbox="", **common)
    assert send_due(base) == 1
    assert [m["Subject"] for m in mail.wait_for_sink(1)] == ["from support"]
    stuck = OutboundEmail.objects.get(subject="from billing")
    assert stuck.state == "queued" and "MailboxUnavailable" in stuck.last_error
    summary = run_once(base)  # the mailbox is left out of reading, and shown as failing
    assert f"mailbox:{BILLING}" not in summary
    state = {m["address"]: m for m in health(create_app(base))["mailboxes"]}
    assert "MAILBOX_SECRET_KEY" in state[BILLING]["last_error"]


def _result(category: str, confidence: float) -> TriageResult:
    return TriageResult(
        category=category,
        priority="medium",
        required_skills=["vpn"],
        language="en",
        summary="s",
        helpful_notes="",
        confidence={"category": confidence, "priority": 0.9, "required_skills": 0.9},
    )


@pytest.mark.parametrize(
    ("confidence", "category", "reviewed"),
    [(0.2, "billing", False), (0.9, "technical", False)],
    ids=["unsure: the mailbox's category, no review for it", "confident: triage's category"],
)
def test_the_mailbox_default_category_stands_where_triage_is_not_confident(
    settings: Settings, confidence: float, category: str, reviewed: bool
) -> None:
    ticket = Ticket(number=1, requester_email="c@example.test", source_message_id="<1@x>", mailbox=BILLING)
    ticket.mailbox_category, ticket.mailbox_skills = "billing", ["payments"]
    changes = result_changes(ticket, _result("technical", confidence), [], settings, dt.datetime(2026, 1, 1))
    assert changes["category"] == category
    assert changes["required_skills"] == ["vpn", "payments"]
    assert (changes["triage.state"] == "review") is reviewed
    plain = Ticket(number=2, requester_email="c@example.test", source_message_id="<2@x>")
    unsure = result_changes(plain, _result("technical", 0.2), [], settings, dt.datetime(2026, 1, 1))
    assert unsure["category"] == "technical" and unsure["triage.state"] == "review"  # no mailbox: as before
    assert unsure["required_skills"] == ["vpn"]


def test_the_admin_panel_lists_each_mailbox_with_its_state(base: Settings, mail: MailStack) -> None:
    billing(mail)
    add_mailbox(BROKEN, "customer@example.test", "Wrong-Secret-123", mail.imap_port)
    run_once(base)
    app = create_app(base)
    make_user("admin@example.test", role="admin")
    client = app.test_client()
    cookie_login(client, "admin@example.test")
    page = client.get("/admin/mailboxes/").get_data(as_text=True)
    rows = {address: page.split(address, 1)[1][:1500] for address in (BILLING, BROKEN)}
    assert 'badge-success">ok</span> last read' in rows[BILLING]
    assert 'badge-danger">failing</span> never read' in rows[BROKEN] and "LoginError" in rows[BROKEN]
    assert "Wrong-Secret-123" not in page


def test_an_email_sent_to_two_support_addresses_opens_one_ticket_acknowledged_once(
    base: Settings, mail: MailStack
) -> None:
    billing(mail)
    both = raw_email(subject="Cc to both of you", to=f"{SUPPORT}, {BILLING}")
    mail.deliver(both)
    mail.deliver(both, user=BILLING_LOGIN)
    summary = run_once(base)
    assert summary["mailbox"] == {"Created": 1}  # read first
    assert "Created" not in summary[f"mailbox:{BILLING}"]  # the same Message-ID: known already
    assert Ticket.objects.count() == 1 and Ticket.objects.get().mailbox == ""
    assert len(mail.wait_for_sink(1)) == 1
    time.sleep(1)
    assert len(mail.sink_messages()) == 1


def test_the_running_daemon_reads_a_second_mailbox_beside_a_broken_one_and_stops_on_sigterm(
    base: Settings, mail: MailStack
) -> None:
    billing(mail)
    add_mailbox(BROKEN, "customer@example.test", "password", closed_port())
    env = {**os.environ, **to_environ(base), "IMAP_IDLE_SECONDS": "0.5"}
    process = subprocess.Popen([sys.executable, "run_daemon.py"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        mail.deliver(raw_email(subject="Daemon billing", to=BILLING, sender="d1@example.org"), user=BILLING_LOGIN)
        mail.deliver(raw_email(subject="Daemon support", to=SUPPORT, sender="d2@example.org"))
        sent = {m["Subject"].split("] ", 1)[1]: m["From"] for m in mail.wait_for_sink(2, timeout=30)}
        assert sent == {"Daemon billing": BILLING, "Daemon support": SUPPORT}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    log = process.stderr.read() if process.stderr else ""
    assert f"reading mailbox {BILLING}" in log and "ConnectionRefusedError" in log and "stopped" in log
