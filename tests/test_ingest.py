"""daemon.ingest against a real database and the real SMTP sink: tickets, threading, loops, quarantine."""

from __future__ import annotations

import email
import time

import pytest

from config import Settings
from daemon import ingest as ingest_module
from daemon import store
from daemon.ingest import ingest, reingest_quarantined
from daemon.outcomes import Created, Duplicate, Ignored, Quarantined, Threaded
from models import OutboundEmail, QuarantinedEmail, Ticket, TicketMessage, User
from models.links import find_status_link
from tests.conftest import make_settings
from tests.daemon_support import raw_email, reply_to
from tests.support import MailStack


def test_new_email_creates_ticket_and_sends_acknowledgement(settings: Settings, mail: MailStack) -> None:
    raw = raw_email(sender="Ann Customer <Ann@Example.test>", subject="Printer on fire", Cc="boss@example.test")
    outcome = ingest(raw, settings)
    assert isinstance(outcome, Created) and outcome.acknowledged
    ticket = Ticket.objects.get(number=outcome.ticket_number)
    assert ticket.subject == "Printer on fire" and ticket.requester_email == "ann@example.test"
    assert sorted(ticket.participants) == ["ann@example.test", "boss@example.test"]
    assert ticket.requester.role == "user" and ticket.triage.state == "pending"
    assert ticket.message_count == 1 and ticket.sla_due_at > ticket.created_at
    assert TicketMessage.objects.get(ticket=ticket).new_text.startswith("Hello, my printer")

    [ack] = mail.wait_for_sink(1)
    original = email.message_from_bytes(raw)
    assert ack["Subject"] == f"[#{ticket.number}] Printer on fire"
    assert ack["In-Reply-To"] == original["Message-ID"] and original["Message-ID"] in ack["References"]
    assert ack["Auto-Submitted"] == "auto-replied" and ack["X-Sink-Rcpt-To"] == "<ann@example.test>"
    link = next(line for line in ack.get_content().splitlines() if "/status/" in line)
    found, state = find_status_link(link.rsplit("/", 1)[1])
    assert state == "ok" and found.ticket_number == ticket.number and "ann" not in link
    assert OutboundEmail.objects.get(kind="ack").state == "sent"


def test_same_message_twice_is_a_duplicate(settings: Settings, mail: MailStack) -> None:
    raw = raw_email()
    first = ingest(raw, settings)
    redelivered = b"Received: from relay.example.test\r\n" + raw.replace(b"\n", b"\r\n").replace(b"\r\r", b"\r")
    assert ingest(raw, settings) == Duplicate(first.ticket_number)
    assert ingest(redelivered, settings) == Duplicate(first.ticket_number)
    assert Ticket.objects.count() == 1 and OutboundEmail.objects.count() == 1
    assert len(mail.wait_for_sink(1)) == 1


def test_different_message_reusing_a_message_id_is_kept(settings: Settings, mail: MailStack) -> None:
    first = ingest(raw_email(message_id="<same@broken.example>", body="Printer broken"), settings)
    second = ingest(raw_email(message_id="<same@broken.example>", body="Scanner broken too"), settings)
    assert isinstance(second, Created) and second.ticket_number != first.ticket_number


def test_replies_thread_by_their_own_and_by_our_message_ids(settings: Settings, mail: MailStack) -> None:
    original = raw_email()
    created = ingest(original, settings)
    follow_up = reply_to(original, body="Also the scanner.")  # answers the customer's own first mail
    assert ingest(follow_up, settings) == Threaded(created.ticket_number)
    [ack] = mail.wait_for_sink(1)
    answer_to_ack = reply_to(bytes(ack), body="Here is the serial number.")
    assert ingest(answer_to_ack, settings) == Threaded(created.ticket_number)
    ticket = Ticket.objects.get(number=created.ticket_number)
    assert ticket.message_count == 3 and Ticket.objects.count() == 1
    assert len(mail.sink_messages()) == 1  # replies are not acknowledged


def test_reply_reopens_a_resolved_ticket(settings: Settings, mail: MailStack) -> None:
    original = raw_email()
    number = ingest(original, settings).ticket_number
    Ticket.objects(number=number).update_one(set__status="resolved")
    assert ingest(reply_to(original, body="It broke again."), settings) == Threaded(number, reopened=True)
    assert Ticket.objects.get(number=number).status == "open"


def test_subject_token_threads_only_for_requester_and_participants(settings: Settings, mail: MailStack) -> None:
    number = ingest(raw_email(sender="ann@example.test", Cc="bob@example.test"), settings).ticket_number
    by_requester = ingest(raw_email(sender="ann@example.test", subject=f"Re: [#{number}] more"), settings)
    by_participant = ingest(raw_email(sender="bob@example.test", subject=f"[#{number}] me too"), settings)
    assert by_requester == Threaded(number) and by_participant == Threaded(number)

    hijack = ingest(raw_email(sender="mallory@evil.test", subject=f"[#{number}] add me"), settings)
    assert isinstance(hijack, Created) and hijack.ticket_number != number
    ticket = Ticket.objects.get(number=number)
    assert ticket.message_count == 3 and "mallory@evil.test" not in ticket.participants
    assert not TicketMessage.objects(ticket=ticket, from_address="mallory@evil.test")


def test_out_of_office_robot_gets_no_second_acknowledgement(settings: Settings, mail: MailStack) -> None:
    number = ingest(raw_email(sender="ann@example.test"), settings).ticket_number
    [ack] = mail.wait_for_sink(1)
    robot = reply_to(bytes(ack), body="I am out of office.", sender="ann@example.test", Auto_Submitted="auto-replied")
    assert ingest(robot, settings) == Threaded(number)
    stranger_robot = raw_email(sender="bot@example.test", subject="Automatic reply: hello", Precedence="bulk")
    outcome = ingest(stranger_robot, settings)
    assert isinstance(outcome, Ignored) and "auto-reply" in outcome.reason
    assert Ticket.objects.count() == 1 and OutboundEmail.objects.count() == 1
    assert len(mail.sink_messages()) == 1


def test_mail_from_our_own_address_is_ignored(settings: Settings, mail: MailStack) -> None:
    outcome = ingest(raw_email(sender=settings.support_address), settings)
    assert outcome == Ignored("sent from our own address") and Ticket.objects.count() == 0


def test_bounce_of_our_acknowledgement_becomes_a_note(settings: Settings, mail: MailStack) -> None:
    number = ingest(raw_email(sender="gone@example.test"), settings).ticket_number
    [ack] = mail.wait_for_sink(1)
    bounce = (
        "From: MAILER-DAEMON@mx.example.test\r\nTo: support@example.test\r\nSubject: Undelivered Mail Returned\r\n"
        "Message-ID: <bounce-1@mx.example.test>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nUser unknown.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822; gone@example.test\r\n"
        "Action: failed\r\nStatus: 5.1.1\r\n\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {ack['Message-ID']}\r\nSubject: x\r\n\r\n--b--\r\n"
    ).encode()
    assert ingest(bounce, settings) == Threaded(number, note=True)
    note = TicketMessage.objects.get(kind="note")
    assert note.ticket_number == number and not note.public
    assert len(mail.sink_messages()) == 1  # never acknowledged
    assert ingest(bounce, settings) == Duplicate(number)


def test_unparseable_mail_is_quarantined_with_its_bytes(settings: Settings, mail: MailStack) -> None:
    raw = b"Subject: who am I\r\n\r\nno sender anywhere\r\n"
    outcome = ingest(raw, settings)
    assert isinstance(outcome, Quarantined) and "no sender" in outcome.reason
    record = QuarantinedEmail.objects.get(id=outcome.quarantine_id)
    assert record.raw.read() == raw and record.reason == outcome.reason
    assert isinstance(ingest(raw, settings), Duplicate) and QuarantinedEmail.objects.count() == 1


def test_quarantined_after_a_fault_then_reingested(
    settings: Settings, mail: MailStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("bug in ticket creation")

    monkeypatch.setattr(store, "create_ticket", broken)
    outcome = ingest(raw_email(), settings)
    assert isinstance(outcome, Quarantined) and "bug in ticket creation" in outcome.reason
    monkeypatch.undo()
    result = reingest_quarantined(outcome.quarantine_id, settings)
    assert isinstance(result, Created) and Ticket.objects.count() == 1
    record = QuarantinedEmail.objects.get(id=outcome.quarantine_id)
    assert record.reingested_at and record.reingest_result == result.describe()


def test_crash_after_ticket_insert_reuses_the_ticket(
    settings: Settings, mail: MailStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Crash(BaseException):
        pass

    def crash(*args: object, **kwargs: object) -> None:
        raise Crash

    raw = raw_email()
    monkeypatch.setattr(ingest_module, "queue_acknowledgement", crash)  # after the ticket insert, before the ledger
    with pytest.raises(Crash):
        ingest(raw, settings)
    assert Ticket.objects.count() == 1
    monkeypatch.undo()
    outcome = ingest(raw, settings)
    assert isinstance(outcome, Created) and outcome.ticket_number == Ticket.objects.get().number
    assert Ticket.objects.count() == 1 and TicketMessage.objects.count() == 1
    assert len(mail.wait_for_sink(1)) == 1


def test_attachments_stored_and_oversize_recorded(db: str, mail: MailStack) -> None:
    settings = make_settings(db, mail, attachment_max_bytes=1000)
    message = email.message_from_bytes(raw_email(), policy=email.policy.default)
    message.add_attachment(b"small", maintype="application", subtype="octet-stream", filename="small.bin")
    message.add_attachment(b"x" * 5000, maintype="application", subtype="pdf", filename="Grüße.pdf")
    ingest(bytes(message), settings)
    small, big = TicketMessage.objects.get().attachments
    assert small.filename == "small.bin" and small.file.read() == b"small"
    assert big.filename == "Grüße.pdf" and big.size == 5000 and not big.file and "size limit" in big.skipped_reason


def test_acknowledgements_are_rate_limited_per_sender(db: str, mail: MailStack) -> None:
    settings = make_settings(db, mail, ack_limit_per_hour=2)
    outcomes = [ingest(raw_email(subject=f"problem {i}"), settings) for i in range(3)]
    assert [o.acknowledged for o in outcomes] == [True, True, False]
    assert Ticket.objects.count() == 3 and len(mail.wait_for_sink(2)) == 2
    assert User.objects(email="customer@example.test").count() == 1


def test_crash_after_the_acknowledgement_went_out_does_not_send_it_again(settings: Settings, mail: MailStack) -> None:
    from daemon import outbox
    from models import MessageLedger
    from models.mail import ledger_key

    raw = raw_email()
    first = ingest(raw, settings, send_ack=False)  # ticket and claimed acknowledgement stored
    outbox._send_claimed([first.ack], settings)  # accepted by SMTP, "sent" recorded
    MessageLedger.objects(key=ledger_key(email.message_from_bytes(raw)["Message-ID"])).delete()  # killed here
    assert ingest(raw, settings) == Created(first.ticket_number, acknowledged=True)
    assert outbox.send_due(settings) == 0
    time.sleep(0.3)
    assert len(mail.wait_for_sink(1)) == 1 and Ticket.objects.count() == 1


def test_batch_retried_after_a_crash_before_its_ledger_finishes(settings: Settings, mail: MailStack) -> None:
    """Regression (found by bench/crash_safety.py killing PostgreSQL): tickets stored, ledger not yet written,
    then the retried batch had no new ticket to acknowledge, failed on an empty bulk write and was retried
    forever, burning ticket numbers. It must finish the emails through the one-by-one path instead."""
    from daemon.bulk import ingest_batch
    from models import MessageLedger
    from models.tickets import highest_ticket_number

    raws = [raw_email(subject=f"Batch {i}", sender=f"batch{i}@customer.example") for i in range(3)]
    first = ingest_batch([(f"test#{i}", raw) for i, raw in enumerate(raws)], settings)
    assert all(isinstance(outcome, Created) for outcome in first)
    MessageLedger.objects(outcome="created").delete()  # the crash: the ledger entries were never written
    numbers_before = highest_ticket_number()

    again = ingest_batch([(f"test#{i}", raw) for i, raw in enumerate(raws)], settings)

    assert len(again) == 3 and not any(isinstance(outcome, Quarantined) for outcome in again)
    assert Ticket.objects.count() == 3
    assert MessageLedger.objects(outcome="created").count() == 3
    assert OutboundEmail.objects(kind="ack").count() == 3
    # numbers a retry leaves unused are gaps, bounded: the batch's range plus one per email on the one-by-one path
    assert highest_ticket_number() - numbers_before <= 2 * 3
