"""daemon.outbox against the real SMTP sink: stored first, sent once, retried with backoff, errors kept."""

from __future__ import annotations

import socket
import threading
import time

from config import Settings
from daemon.ingest import ingest
from daemon.outbox import retry_failed, send_due, send_one
from daemon.outcomes import Created
from daemon.pressure import intake_backlog, intake_busy
from models import OutboundEmail, queue_email, utcnow
from tests.conftest import make_settings
from tests.daemon_support import mail_script, raw_email, stop_sink
from tests.support import MailStack


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _reply(number: int = 7, **kwargs: object) -> OutboundEmail:
    return queue_email(
        kind="reply",
        to=["ann@example.test"],
        subject=f"[#{number}] Re: Printer",
        text="Please restart it.",
        domain="example.test",
        ticket_number=number,
        in_reply_to="<orig@customer.example>",
        references=["<first@customer.example>", "<orig@customer.example>"],
        headers={"X-Helpdesk-Ticket": str(number)},
        **kwargs,
    )


def test_moderator_reply_goes_out_with_its_stored_message_id(settings: Settings, mail: MailStack) -> None:
    email = _reply()
    assert send_one(email.id, settings) is True
    [sent] = mail.wait_for_sink(1)
    assert sent["Message-ID"] == email.message_id and sent["In-Reply-To"] == "<orig@customer.example>"
    assert sent["References"] == "<first@customer.example> <orig@customer.example>"
    assert sent["X-Helpdesk-Ticket"] == "7" and sent["To"] == "ann@example.test"
    assert OutboundEmail.objects.get().state == "sent"
    assert send_one(email.id, settings) is False and send_due(settings) == 0
    assert len(mail.sink_messages()) == 1


def test_sink_down_then_back_the_acknowledgement_still_goes_out_once(db: str, mail: MailStack) -> None:
    settings = make_settings(db, mail, outbox_backoff_seconds=1.0)
    stop_sink(mail)
    try:
        outcome = ingest(raw_email(), settings)
        assert isinstance(outcome, Created)
        ack = OutboundEmail.objects.get(kind="ack")
        assert ack.state == "queued" and ack.attempts == 1 and "Connection refused" in ack.last_error
        assert send_due(settings) == 0  # not due yet: backoff
    finally:
        mail_script(mail, "start")
    time.sleep(max(0.0, (ack.next_attempt_at - utcnow()).total_seconds()) + 0.05)
    assert send_due(settings) == 1
    assert len(mail.wait_for_sink(1)) == 1
    ack.reload()
    assert ack.state == "sent" and ack.attempts == 2 and ack.last_error is None


def test_failed_after_max_attempts_stays_visible_and_retryable(db: str, mail: MailStack) -> None:
    settings = make_settings(db, mail, outbox_backoff_seconds=0.01, outbox_max_attempts=2)
    email = _reply()
    stop_sink(mail)
    try:
        assert send_one(email.id, settings) is False
        time.sleep(0.05)
        assert send_due(settings) == 0
        email.reload()
        assert email.state == "failed" and email.attempts == 2 and email.last_error
        time.sleep(0.05)
        assert send_due(settings) == 0 and email.reload().attempts == 2  # no longer retried by itself
    finally:
        mail_script(mail, "start")
    assert send_one(email.id, settings) is True  # a manual retry
    assert len(mail.wait_for_sink(1)) == 1 and email.reload().state == "sent"


def test_concurrent_senders_send_each_email_once(settings: Settings, mail: MailStack) -> None:
    for number in range(12):
        _reply(number + 1)
    threads = [threading.Thread(target=send_due, args=(settings,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    send_due(settings)
    messages = mail.wait_for_sink(12)
    time.sleep(0.3)
    assert len(mail.sink_messages()) == 12
    assert len({m["Message-ID"] for m in messages}) == 12
    assert OutboundEmail.objects(state="sent").count() == 12


def test_retried_email_goes_out_on_the_next_pass_and_gets_every_attempt_again(db: str, mail: MailStack) -> None:
    """Regression: "Retry" reset `attempts`, so the next claim (":1") collided with the first attempt's claim
    and the outbox job skipped the email (for two minutes, then for ever after the default attempts)."""
    settings = make_settings(db, mail, outbox_backoff_seconds=0.01, outbox_max_attempts=2)
    unreachable = make_settings(db, mail, mail_port=closed_port(), outbox_backoff_seconds=0.01, outbox_max_attempts=2)
    email = _reply()
    assert send_one(email.id, unreachable) is False
    time.sleep(0.05)
    assert send_due(unreachable) == 0 and email.reload().state == "failed" and email.attempts == 2

    assert retry_failed(email.id) is True
    assert email.reload().state == "queued" and email.attempts == 0
    assert retry_failed(email.id) is False  # only a failed email is retried
    # the full number of attempts again: the first one after the retry fails, the email stays queued
    assert send_due(unreachable) == 0 and email.reload().state == "queued" and email.attempts == 1
    time.sleep(0.05)
    assert send_due(unreachable) == 0 and email.reload().state == "failed" and email.attempts == 2

    assert retry_failed(email.id) is True  # a second retry claims apart from both earlier rounds
    assert send_due(settings) == 1
    [sent] = mail.wait_for_sink(1)
    assert sent["Message-ID"] == email.message_id
    assert email.reload().state == "sent" and email.attempts == 1 and email.last_error is None
    assert send_due(settings) == 0 and len(mail.sink_messages()) == 1


def test_retry_after_a_single_allowed_attempt_sends_at_once(db: str, mail: MailStack) -> None:
    """Regression (the reported repro): max attempts 1, fail, retry, send_due → 0 twice, nothing sent."""
    unreachable = make_settings(db, mail, mail_port=closed_port(), outbox_max_attempts=1)
    settings = make_settings(db, mail, outbox_max_attempts=1)
    email = _reply()
    assert send_one(email.id, unreachable) is False and email.reload().state == "failed"
    assert retry_failed(email.id) is True
    assert send_due(settings) == 1
    assert len(mail.wait_for_sink(1)) == 1 and email.reload().state == "sent"


def test_during_a_burst_of_intake_customers_emails_go_first_and_staff_notifications_follow(
    settings: Settings, mail: MailStack
) -> None:
    """While the mailbox loop works through a backlog, the outbox job sends replies (and acknowledgements) and
    holds staff notifications; they go out on the first pass after it."""
    reply = _reply(number=8)
    queue_email(
        kind="notification",
        to=["mod@example.test"],
        subject="[#8] Assigned to you",
        text="Ticket #8 is yours.",
        domain="example.test",
        ticket_number=8,
    )
    with intake_backlog():
        assert intake_busy()
        assert send_due(settings) == 1
    [sent] = mail.wait_for_sink(1)
    assert sent["Message-ID"] == reply.message_id
    assert OutboundEmail.objects.get(kind="notification").state == "queued"
    assert not intake_busy()
    assert send_due(settings) == 1
    assert [m["To"] for m in mail.wait_for_sink(2)][1] == "mod@example.test"
