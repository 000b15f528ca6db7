"""Claims (models/claims.py) as the daemon's jobs use them: racing workers, lease takeover, web requests."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import socket
import time

import mongoengine

from config import Settings
from daemon.ingest import ingest, reingest_requested
from daemon.outbox import send_due
from daemon.outcomes import Quarantined
from models import OutboundEmail, QuarantinedEmail, Ticket, connect_db, queue_email, utcnow
from models.claims import claim, finish, renew
from tests.conftest import make_settings
from tests.daemon_support import raw_email
from tests.support import MailStack
from tests.triage_support import make_ticket
from triage.queue import claim_due


def _claim_all(uri: str, worker: str, start, results) -> None:  # noqa: ANN001 - multiprocessing objects
    connect_db(uri)
    start.wait()
    got: list[int] = []
    while True:
        batch = claim_due(worker, limit=5)
        if not batch:
            break
        got += [t.number for t in batch]
        time.sleep(0.01)  # let the others in: one process must not finish before the rest started
    results.put((worker, got))
    mongoengine.disconnect()


def test_four_processes_racing_for_due_tickets_claim_each_exactly_once(db: str) -> None:
    numbers = sorted(make_ticket(f"Invoice {i}", "charged twice").number for i in range(60))
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    workers = [context.Process(target=_claim_all, args=(db, f"worker-{i}", start, results)) for i in range(4)]
    for process in workers:
        process.start()
    start.set()
    claimed = dict(results.get(timeout=120) for _ in workers)
    for process in workers:
        process.join(timeout=30)
    everything = [n for got in claimed.values() for n in got]
    assert sorted(everything) == numbers  # none twice, none lost
    assert sum(1 for got in claimed.values() if got) >= 2  # they really raced
    for ticket in Ticket.objects:
        assert ticket.triage.state == "running" and ticket.triage.attempts == 1
        assert ticket.triage.claimed_by in claimed and ticket.number in claimed[ticket.triage.claimed_by]


def test_a_worker_whose_lease_was_taken_over_cannot_write_its_result(db: str) -> None:
    email = queue_email(kind="reply", to=["a@example.test"], subject="s", text="t", domain="example.test")
    now = utcnow()
    ready = {"state": "queued"}
    first = claim(OutboundEmail, ready, "slow", 30, set_fields={"state": "sending"}, now=now)
    assert first is not None and first.id == email.id
    assert claim(OutboundEmail, {"state": "sending"}, "other", 30, now=now) is None  # held
    later = now + dt.timedelta(seconds=31)
    second = claim(OutboundEmail, {"state": "sending"}, "other", 30, now=later)
    assert second is not None and second.claimed_by == "other"
    assert not renew(OutboundEmail, email.id, "slow", 30)
    assert not finish(OutboundEmail, email.id, "slow", set_fields={"state": "sent"})
    assert finish(OutboundEmail, email.id, "other", set_fields={"state": "sent"})
    email.reload()
    assert email.state == "sent" and email.claimed_by is None and email.lease_until is None


def test_reply_queued_by_the_web_goes_out_on_the_next_outbox_pass(settings: Settings, mail: MailStack) -> None:
    email = queue_email(
        kind="reply", to=["ann@example.test"], subject="[#3] Re: x", text="Done.", domain="example.test"
    )
    assert send_due(settings) == 1
    assert mail.wait_for_sink(1)[0]["Message-ID"] == email.message_id
    assert email.reload().state == "sent" and send_due(settings) == 0


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_failed_email_set_back_to_queued_by_the_web_is_sent_by_the_next_pass(db: str, mail: MailStack) -> None:
    unreachable = make_settings(db, mail, mail_port=_closed_port(), outbox_max_attempts=1)
    email = queue_email(kind="reply", to=["ann@example.test"], subject="s", text="t", domain="example.test")
    assert send_due(unreachable) == 0 and email.reload().state == "failed" and email.last_error
    # exactly what the panel's "Retry" action writes
    OutboundEmail.objects(id__in=[email.id], state="failed").update(
        set__state="queued", set__next_attempt_at=utcnow(), set__attempts=0, unset__last_error=True
    )
    assert send_due(make_settings(db, mail, outbox_max_attempts=1)) == 1
    assert mail.wait_for_sink(1)[0]["Message-ID"] == email.message_id
    email.reload()
    assert email.state == "sent" and email.attempts == 1 and email.claimed_by is None


def test_reingest_requested_from_the_web_is_done_once_by_the_daemon_job(settings: Settings, mail: MailStack) -> None:
    outcome = ingest(b"Subject: no sender\r\n\r\nbody\r\n", settings)
    assert isinstance(outcome, Quarantined)
    fixed = ingest(raw_email(subject="Fixed later"), settings)  # an unrelated email: the job must not touch it
    assert fixed.ticket_number
    assert reingest_requested(settings) == 0  # nothing requested yet
    QuarantinedEmail.objects(id=outcome.quarantine_id).update_one(set__reingest_requested_at=utcnow())  # the panel
    assert reingest_requested(settings) == 1
    record = QuarantinedEmail.objects.get(id=outcome.quarantine_id)
    assert record.reingest_requested_at is None and record.reingested_at and record.claimed_by is None
    assert record.reingest_result.startswith("quarantined: no sender")
    assert reingest_requested(settings) == 0 and QuarantinedEmail.objects.count() == 1
