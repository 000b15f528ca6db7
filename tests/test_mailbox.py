"""The IMAP side against real Dovecot: the whole corpus through the poller, flags, UIDVALIDITY, leases."""

from __future__ import annotations

import contextlib
import datetime as dt
import multiprocessing
import os
import pathlib
import signal
import subprocess
import threading
import time

import pytest
from imapclient.exceptions import IMAPClientError, LoginError

from config import Settings
from daemon.lease import Lease
from daemon.mailbox import INGESTED_KEYWORD, MAX_ERROR_LENGTH, Mailbox, connect, poll_error_text
from daemon.outbox import send_due
from daemon.poller import poll_once
from models import MailboxCursor, MessageLedger, OutboundEmail, QuarantinedEmail, Ticket, utcnow
from models.links import find_status_link
from tests.conftest import make_settings
from tests.daemon_support import raw_email, reply_to
from tests.support import MailStack, make_email


def _flags(settings: Settings, folder: str = "INBOX") -> list[tuple]:
    with connect(settings) as client:
        client.select_folder(folder, readonly=True)
        return list(client.get_flags(client.search(["ALL"])).values())


def test_every_corpus_email_ends_somewhere_and_a_second_pass_creates_nothing(
    settings: Settings, mail: MailStack, corpus: pathlib.Path
) -> None:
    files = sorted((corpus / "emails").rglob("*.eml"))
    for path in files:
        mail.deliver(path.read_bytes())
    first = poll_once(settings)
    assert first.processed == len(files)
    assert set(first.outcomes) <= {"Created", "Threaded", "Ignored", "Quarantined", "Duplicate"}
    assert Ticket.objects.count() == first.outcomes["Created"] > len(files) / 3
    # same Message-ID and same content (CRLF/LF copies of one fixture) only; reused IDs with new content are kept
    assert first.outcomes["Duplicate"] < len(files) / 10
    acks = OutboundEmail.objects(kind="ack").count()
    assert len(mail.wait_for_sink(acks)) == acks > 0  # sent at once, and recorded "sent" as each went out
    assert OutboundEmail.objects(state="sent").count() == acks
    OutboundEmail.objects.update(set__lease_until=utcnow())  # even with every lease expired: nothing twice
    assert send_due(settings, limit=1000) == 0
    assert len(mail.sink_messages()) == acks
    assert QuarantinedEmail.objects.count() == first.outcomes["Quarantined"] > 0
    assert all(q.reason for q in QuarantinedEmail.objects)
    assert first.outcomes["Ignored"] + first.outcomes["Threaded"] >= 40  # bounces and auto-replies in the corpus
    assert all(b"\\Seen" in flags and INGESTED_KEYWORD in flags for flags in _flags(settings))

    assert poll_once(settings).processed == 0
    MailboxCursor.objects.update(set__last_uid=0)  # force a full re-read: the ledger must drop all of it
    again = poll_once(settings)
    assert again.processed == len(files) and set(again.outcomes) == {"Duplicate"}
    assert Ticket.objects.count() == first.outcomes["Created"]
    assert QuarantinedEmail.objects.count() == first.outcomes["Quarantined"]


def test_poller_acknowledges_and_moves_to_processed_folder(db: str, mail: MailStack) -> None:
    settings = make_settings(db, mail, imap_processed_folder="Processed")
    mail.send(make_email(subject="VPN down"))
    result = poll_once(settings)
    assert result.outcomes == {"Created": 1}
    [ack] = mail.wait_for_sink(1)
    assert ack["Subject"].endswith("VPN down")
    assert _flags(settings) == [] and len(_flags(settings, "Processed")) == 1


def test_uidvalidity_change_reads_again_without_duplicates(db: str, mail: MailStack) -> None:
    mail.doveadm("mailbox", "create", "-u", "support@example.test", "Intake")
    settings = make_settings(db, mail, imap_folder="Intake")
    first, second = raw_email(subject="one"), raw_email(subject="two")
    try:
        mail.deliver(first, mailbox="Intake")
        mail.deliver(second, mailbox="Intake")
        assert poll_once(settings).outcomes == {"Created": 2}
        old_validity = MailboxCursor.objects.get().uidvalidity

        mail.doveadm("mailbox", "delete", "-u", "support@example.test", "Intake")
        mail.doveadm("mailbox", "create", "-u", "support@example.test", "Intake")
        for raw in (first, second, raw_email(subject="three")):
            mail.deliver(raw, mailbox="Intake")
        result = poll_once(settings)
        assert MailboxCursor.objects.get().uidvalidity != old_validity
        assert result.outcomes == {"Duplicate": 2, "Created": 1}
        assert sorted(t.subject for t in Ticket.objects) == ["one", "three", "two"]
    finally:
        mail.doveadm("mailbox", "delete", "-u", "support@example.test", "Intake")


def test_only_one_instance_holds_the_lease(settings: Settings) -> None:
    leases = [Lease("race-mailbox", f"holder-{i}", 60) for i in range(8)]
    results: list[bool] = []
    barrier = threading.Barrier(len(leases))

    def take(lease: Lease) -> None:
        barrier.wait()
        results.append(lease.acquire())

    threads = [threading.Thread(target=take, args=(lease,)) for lease in leases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 1
    holder = next(lease for lease in leases if lease.held)
    assert holder.acquire() and not leases[0 if holder is not leases[0] else 1].acquire()
    holder.release()  # a clean stop hands over at once
    successor = leases[0 if holder is not leases[0] else 1]
    assert successor.acquire() and not holder.acquire()


def test_expired_mailbox_lease_is_taken_over_and_its_old_holder_knows(settings: Settings) -> None:
    crashed, standby = Lease("lapsed-mailbox", "crashed", 1), Lease("lapsed-mailbox", "standby", 60)
    assert crashed.acquire() and not standby.acquire()
    time.sleep(1.1)  # the holder died: it never renewed
    assert standby.acquire()
    assert not crashed.renew_if_due() and not crashed.acquire()  # a late renewal does not steal it back
    assert standby.acquire()


def test_concurrent_pollers_ingest_each_message_once(settings: Settings, mail: MailStack) -> None:
    for i in range(15):
        mail.deliver(raw_email(subject=f"parallel {i}"))
    threads = [threading.Thread(target=poll_once, args=(settings,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    poll_once(settings)
    assert Ticket.objects.count() == 15
    assert MessageLedger.objects(outcome="created").count() == 15
    with connect(settings) as client:
        assert Mailbox(client, settings).can_idle


def test_reply_in_the_same_batch_as_its_original_threads(settings: Settings, mail: MailStack) -> None:
    original = raw_email(subject="Printer jam", sender="ann@example.test")
    mail.deliver(original)
    mail.deliver(reply_to(original, body="It also smells of smoke.", sender="ann@example.test"))
    mail.deliver(raw_email(subject="Unrelated", sender="bob@example.test"))
    assert poll_once(settings).outcomes == {"Created": 2, "Threaded": 1}
    ticket = Ticket.objects.get(subject="Printer jam")
    assert ticket.message_count == 2 and Ticket.objects.count() == 2
    assert len(mail.wait_for_sink(2)) == 2


def test_reply_in_a_later_chunk_of_a_backlog_parsed_ahead_threads(
    settings: Settings, mail: MailStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backlog of several chunks is parsed ahead in a worker process: order and threading must not change."""
    from daemon import poller

    monkeypatch.setattr(poller, "CHUNK_SIZE", 2)
    original = raw_email(subject="Printer jam", sender="ann@example.test")
    mail.deliver(original)
    for name in ("bob", "cy", "dan"):
        mail.deliver(raw_email(subject=f"Question from {name}", sender=f"{name}@example.test"))
    mail.deliver(reply_to(original, body="It also smells of smoke.", sender="ann@example.test"))
    assert poll_once(settings).outcomes == {"Created": 4, "Threaded": 1}
    assert Ticket.objects.get(subject="Printer jam").message_count == 2 and Ticket.objects.count() == 4
    acks = mail.wait_for_sink(4)
    assert len(acks) == 4 and OutboundEmail.objects(state="sent").count() == 4
    for ack in acks:  # each status link (stored in one bulk insert per chunk) opens its own ticket
        link = next(line for line in ack.get_content().splitlines() if "/status/" in line)
        found, state = find_status_link(link.rsplit("/", 1)[1])
        assert state == "ok" and str(ack["Subject"]).startswith(f"[#{found.ticket_number}] ")


def test_a_backlog_acknowledged_by_several_senders_gets_one_acknowledgement_per_email(
    settings: Settings, mail: MailStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each chunk's acknowledgements are shared between ACK_SENDERS SMTP connections: none lost, none twice."""
    from daemon import poller

    monkeypatch.setattr(poller, "CHUNK_SIZE", 3)
    assert poller.ACK_SENDERS >= 2
    senders = [f"customer{i}@example.test" for i in range(8)]
    for sender in senders:
        mail.deliver(raw_email(subject=f"Question from {sender}", sender=sender))
    assert poll_once(settings).outcomes == {"Created": 8}
    acks = mail.wait_for_sink(8)
    time.sleep(0.5)  # a second copy of any of them would land now
    acks = mail.wait_for_sink(8)
    assert sorted(str(ack["To"]) for ack in acks) == sorted(senders)
    assert OutboundEmail.objects(kind="ack", state="sent").count() == 8


def test_a_parser_process_killed_between_backlogs_is_replaced_and_no_email_is_lost(
    settings: Settings, mail: MailStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parser process lives as long as the daemon; when it dies (killed, out of memory) the next backlog is
    still parsed and stored in full."""
    from daemon import poller

    monkeypatch.setattr(poller, "CHUNK_SIZE", 2)
    for i in range(3):
        mail.deliver(raw_email(subject=f"First wave {i}", sender=f"first{i}@example.test"))
    assert poll_once(settings).outcomes == {"Created": 3}
    workers = multiprocessing.active_children()
    assert workers, "a backlog of two chunks is parsed in a worker process"
    for worker in workers:
        os.kill(worker.pid, signal.SIGKILL)
    for i in range(3):
        mail.deliver(raw_email(subject=f"Second wave {i}", sender=f"second{i}@example.test"))
    assert poll_once(settings).outcomes == {"Created": 3}
    assert Ticket.objects(subject__startswith="Second wave").count() == 3
    assert len(mail.wait_for_sink(6)) == 6


def test_a_deleted_folder_is_recorded_as_the_poll_error_and_cleared_once_it_is_back(db: str, mail: MailStack) -> None:
    """Regression: a failed poll (here the folder is gone) left the cursor's error as it was."""
    mail.doveadm("mailbox", "create", "-u", "support@example.test", "Intake")
    settings = make_settings(db, mail, imap_folder="Intake")
    try:
        poll_once(settings)
        polled_at = MailboxCursor.objects.get().last_poll_at
        mail.doveadm("mailbox", "delete", "-u", "support@example.test", "Intake")
        with pytest.raises(IMAPClientError):
            poll_once(settings)
        cursor = MailboxCursor.objects.get()
        assert cursor.last_poll_at == polled_at  # not a successful poll
        assert "IMAP4.error: select failed" in cursor.last_error and "Intake" in cursor.last_error
        assert cursor.updated_at > polled_at

        mail.doveadm("mailbox", "create", "-u", "support@example.test", "Intake")
        poll_once(settings)
        cursor = MailboxCursor.objects.get()
        assert cursor.last_error is None and cursor.last_poll_at > polled_at
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already gone when the test failed midway
            mail.doveadm("mailbox", "delete", "-u", "support@example.test", "Intake")


def test_poll_error_text_is_one_short_line_without_the_password() -> None:
    at = dt.datetime(2025, 3, 1, 12, 30, 5)
    error = LoginError("b'[AUTHENTICATIONFAILED] no such user or password s3cret'\r\nmore")
    text = poll_error_text(error, at, ("s3cret", ""))
    assert text == "2025-03-01T12:30:05Z LoginError: b'[AUTHENTICATIONFAILED] no such user or password ***' more"
    assert poll_error_text(TimeoutError(), at) == "2025-03-01T12:30:05Z TimeoutError"
    long = poll_error_text(OSError("x" * 1000), at)
    assert len(long) == MAX_ERROR_LENGTH and long.endswith("…")


def test_batch_intake_keeps_the_hourly_acknowledgement_limit_per_sender(db: str, mail: MailStack) -> None:
    settings = make_settings(db, mail, ack_limit_per_hour=2)
    for i in range(4):
        mail.deliver(raw_email(subject=f"burst {i}"))
    mail.deliver(raw_email(subject="someone else", sender="Bo <bo@example.test>"))
    result = poll_once(settings)
    assert result.outcomes["Created"] == 5 and Ticket.objects.count() == 5
    acks = OutboundEmail.objects(kind="ack")
    assert sorted(a.to[0] for a in acks) == ["bo@example.test", "customer@example.test", "customer@example.test"]
    assert len(mail.wait_for_sink(3)) == 3
