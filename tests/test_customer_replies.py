"""A customer's emailed reply: it reopens a pending (or resolved) ticket with a timeline event, and the assignee
gets exactly one notification, even when the same email is delivered again or replayed after a crash."""

from __future__ import annotations

from config import Settings
from daemon.ingest import ingest
from daemon.outcomes import Duplicate, Threaded
from models import MessageLedger, OutboundEmail, Ticket, TicketMessage, User
from models.mail import ledger_key
from tests.daemon_support import raw_email, reply_to
from tests.support import MailStack


def _pending_ticket(settings: Settings, **fields: str) -> tuple[bytes, Ticket, User]:
    """A ticket from ann@example.test (Cc bob), assigned to a moderator, waiting on the customer."""
    original = raw_email(sender="ann@example.test", **fields)
    number = ingest(original, settings, send_ack=False).ticket_number
    moderator = User(email="mod@example.test", role="moderator").save()
    Ticket.objects(number=number).update_one(set__assignee=moderator.id, set__status="pending")
    return original, Ticket.objects.get(number=number), moderator


def _notifications() -> list[OutboundEmail]:
    return list(OutboundEmail.objects(kind="notification"))


def _status_events(ticket: Ticket) -> list[TicketMessage]:
    return list(TicketMessage.objects(ticket=ticket, kind="event", event="status"))


def test_customer_reply_reopens_a_pending_ticket_and_notifies_the_assignee_once(
    settings: Settings, mail: MailStack
) -> None:
    original, ticket, moderator = _pending_ticket(settings)
    reply = reply_to(original, body="Here is the screenshot.", sender="ann@example.test")
    assert ingest(reply, settings) == Threaded(ticket.number, reopened=True)
    ticket.reload()
    assert ticket.status == "open" and ticket.message_count == 2
    [event] = _status_events(ticket)
    assert event.text == "status pending -> open (customer replied) by ann@example.test"
    assert event.from_address == "ann@example.test" and event.author == ticket.requester and not event.public
    [notice] = _notifications()
    assert notice.to == ["mod@example.test"] and notice.subject.startswith(f"[#{ticket.number}] Customer replied")
    assert f"/tickets/{ticket.number}" in notice.text and "ann@example.test replied" in notice.text
    entry = TicketMessage.objects.get(ticket=ticket, kind="inbound", new_text__contains="screenshot")
    assert entry.notice_message_id == notice.message_id  # chosen once, kept with the reply
    assert MessageLedger.lookup(notice.message_id).ticket_number == ticket.number  # answers to it thread

    assert ingest(reply, settings) == Duplicate(ticket.number)  # delivered twice
    assert len(_notifications()) == 1 and len(_status_events(ticket)) == 1


def test_crash_replays_queue_no_second_notification_and_lose_none(settings: Settings, mail: MailStack) -> None:
    original, ticket, _ = _pending_ticket(settings)
    reply = reply_to(original, body="Still broken.", sender="ann@example.test")
    ingest(reply, settings)
    [notice] = _notifications()
    entry = TicketMessage.objects.get(ticket=ticket, kind="inbound", new_text__contains="Still broken")

    # crash after the notification was queued, before the ledger entry: the retry threads again, queues nothing
    MessageLedger.objects(key=ledger_key(entry.message_id)).delete()
    assert ingest(reply, settings) == Threaded(ticket.number)
    assert [n.message_id for n in _notifications()] == [notice.message_id]
    assert TicketMessage.objects(ticket=ticket, kind="inbound").count() == 2 and len(_status_events(ticket)) == 1

    # crash after its Message-ID was chosen, before it was queued: the retry queues it, under that id
    MessageLedger.objects(key=ledger_key(entry.message_id)).delete()
    OutboundEmail.objects(kind="notification").delete()
    assert ingest(reply, settings) == Threaded(ticket.number)
    assert [n.message_id for n in _notifications()] == [notice.message_id]

    # crash right after the thread entry was stored: the retry still notifies, once
    MessageLedger.objects(key=ledger_key(entry.message_id)).delete()
    OutboundEmail.objects(kind="notification").delete()
    TicketMessage.objects(id=entry.id).update_one(unset__notice_message_id=True)
    assert ingest(reply, settings) == Threaded(ticket.number)
    assert len(_notifications()) == 1 and TicketMessage.objects(ticket=ticket, kind="inbound").count() == 2


def _bounce_of(message_id: str) -> bytes:
    """A delivery status notification about the email we sent as `message_id`."""
    return (
        "From: MAILER-DAEMON@mx.example.test\r\nTo: support@example.test\r\nSubject: Undelivered Mail Returned\r\n"
        "Message-ID: <bounce-7@mx.example.test>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nMailbox full.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822; ann@example.test\r\n"
        "Action: failed\r\nStatus: 5.2.2\r\n\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {message_id}\r\nSubject: x\r\n\r\n--b--\r\n"
    ).encode()


def test_auto_replies_and_bounces_reopen_nothing_and_notify_no_one(settings: Settings, mail: MailStack) -> None:
    original, ticket, _ = _pending_ticket(settings)
    robot = reply_to(original, body="I am out of the office.", sender="ann@example.test", Auto_Submitted="auto-replied")
    assert ingest(robot, settings) == Threaded(ticket.number)
    bulk = reply_to(original, body="Vacation notice.", sender="ann@example.test", Precedence="auto_reply")
    assert ingest(bulk, settings) == Threaded(ticket.number)
    assert Ticket.objects.get(id=ticket.id).status == "pending"
    Ticket.objects(id=ticket.id).update_one(set__status="resolved")
    later = reply_to(
        original, body="Out of office until Monday.", sender="ann@example.test", Auto_Submitted="auto-replied"
    )
    ingest(later, settings)
    Ticket.objects(id=ticket.id).update_one(set__status="pending")
    assert ingest(_bounce_of(ticket.ack_message_id), settings) == Threaded(ticket.number, note=True)
    assert Ticket.objects.get(id=ticket.id).status == "pending"
    assert _notifications() == [] and _status_events(ticket) == []


def test_a_participants_reply_counts_and_a_cc_staff_members_does_not(settings: Settings, mail: MailStack) -> None:
    User(email="sam@example.test", role="moderator").save()
    original, ticket, _ = _pending_ticket(settings, Cc="bob@example.test, sam@example.test")
    by_staff = reply_to(original, body="Looking into it.", sender="sam@example.test")
    assert ingest(by_staff, settings) == Threaded(ticket.number)
    assert Ticket.objects.get(id=ticket.id).status == "pending" and _notifications() == []
    by_colleague = reply_to(original, body="Same problem here.", sender="bob@example.test")
    assert ingest(by_colleague, settings) == Threaded(ticket.number, reopened=True)
    [event] = _status_events(ticket)
    assert event.text.endswith("by bob@example.test") and event.author is None
    assert len(_notifications()) == 1


def test_reply_to_an_open_ticket_notifies_without_a_status_event(settings: Settings, mail: MailStack) -> None:
    original, ticket, _ = _pending_ticket(settings)
    Ticket.objects(id=ticket.id).update_one(set__status="open")
    assert ingest(reply_to(original, body="One more thing.", sender="ann@example.test"), settings) == Threaded(
        ticket.number
    )
    assert len(_notifications()) == 1 and _status_events(ticket) == []
    Ticket.objects(id=ticket.id).update_one(set__status="closed")
    again = reply_to(original, body="It broke again.", sender="ann@example.test")
    assert ingest(again, settings) == Threaded(ticket.number, reopened=True)
    [event] = _status_events(ticket)
    assert event.text.startswith("status closed -> open") and Ticket.objects.get(id=ticket.id).resolved_at is None
    assert len(_notifications()) == 2


def test_unassigned_ticket_reopens_without_a_notification(settings: Settings, mail: MailStack) -> None:
    original, ticket, _ = _pending_ticket(settings)
    Ticket.objects(id=ticket.id).update_one(unset__assignee=True)
    assert ingest(reply_to(original, body="Hello?", sender="ann@example.test"), settings) == Threaded(
        ticket.number, reopened=True
    )
    assert _notifications() == []
