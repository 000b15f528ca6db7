"""Issue 10 (trust), the email side: each attack from tests/attacks/*.eml through the real `ingest` path,
the real database and the real SMTP sink."""

from __future__ import annotations

import pathlib
import re

import pytest

from config import Settings
from daemon.ingest import ingest
from daemon.outcomes import Created, Duplicate, Ignored, Threaded
from models import OutboundEmail, Ticket, TicketMessage, queue_email
from tests.conftest import make_settings
from tests.daemon_support import raw_email, reply_to
from tests.support import MailStack

ATTACKS = pathlib.Path(__file__).resolve().parent / "attacks"


def attack(name: str, **values: object) -> bytes:
    text = (ATTACKS / name).read_text()
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    return text.encode()


def victim_ticket(settings: Settings, mail: MailStack) -> tuple[int, OutboundEmail]:
    """Vera's ticket #1 and the acknowledgement we sent her."""
    created = ingest(raw_email(sender="Vera Victim <vera@victim.example>", subject="Payroll export broken"), settings)
    assert isinstance(created, Created) and created.ticket_number == 1
    mail.wait_for_sink(1)
    return created.ticket_number, OutboundEmail.objects.get(kind="ack", ticket_number=created.ticket_number)


def test_encoded_display_name_is_not_the_sender(settings: Settings, mail: MailStack) -> None:
    number, _ = victim_ticket(settings, mail)
    outcome = ingest(attack("encoded_name_sender.eml"), settings)
    assert isinstance(outcome, Created) and outcome.ticket_number != number
    stranger = Ticket.objects.get(number=outcome.ticket_number)
    assert stranger.requester_email == "mallory@attacker.example" and stranger.related_to == [number]
    vera = Ticket.objects.get(number=number)
    assert vera.message_count == 1 and "mallory@attacker.example" not in vera.participants
    entry = TicketMessage.objects.get(ticket_number=outcome.ticket_number, kind="inbound")
    assert entry.from_address == "mallory@attacker.example" and entry.from_name == "Vera Victim <vera@victim.example>"


def test_crlf_in_an_encoded_name_or_subject_adds_no_recipient(settings: Settings, mail: MailStack) -> None:
    outcome = ingest(attack("crlf_bcc_name.eml"), settings)
    assert isinstance(outcome, Created) and outcome.acknowledged
    [ack] = mail.wait_for_sink(1)
    assert ack["X-Sink-Rcpt-To"] == "<bob@example.test>"
    assert ack["Bcc"] is None and "elsewhere" not in str(ack["To"]) and "elsewhere" not in str(ack["Subject"])
    ticket = Ticket.objects.get(number=outcome.ticket_number)
    assert "\r" not in ticket.subject and "\n" not in ticket.subject
    entry = TicketMessage.objects.get(ticket_number=ticket.number)
    assert entry.from_name == "Bob Bcc: third@elsewhere.example"


def test_acknowledgement_message_ids_are_random_and_stored(settings: Settings, mail: MailStack) -> None:
    number, ack = victim_ticket(settings, mail)
    other = ingest(raw_email(sender="ann@customer.example", subject="Another"), settings)
    other_ack = OutboundEmail.objects.get(kind="ack", ticket_number=other.ticket_number)
    ticket = Ticket.objects.get(number=number)
    assert ticket.ack_message_id == ack.message_id != other_ack.message_id
    local = ack.message_id.strip("<>").split("@")[0]
    assert not local.startswith("ack-") and len(local) >= 32  # 192 random bits, url-safe base64
    [sent, _] = mail.wait_for_sink(2)
    assert sent["Message-ID"] == ack.message_id
    # The id a stranger could compute under the old scheme threads nowhere.
    outcome = ingest(attack("computed_ack_reply.eml"), settings)
    assert isinstance(outcome, Created) and Ticket.objects.get(number=number).message_count == 1


def test_stranger_replying_to_our_real_message_id_opens_a_linked_ticket(settings: Settings, mail: MailStack) -> None:
    number, ack = victim_ticket(settings, mail)
    Ticket.objects(number=number).update_one(set__status="closed")
    outcome = ingest(attack("stranger_reply_template.eml", number=number, message_id=ack.message_id), settings)
    assert isinstance(outcome, Created) and outcome.ticket_number != number
    vera = Ticket.objects.get(number=number)
    assert vera.status == "closed" and vera.message_count == 1 and vera.participants == ["vera@victim.example"]
    assert TicketMessage.objects(ticket_number=number).count() == 1
    new = Ticket.objects.get(number=outcome.ticket_number)
    assert new.related_to == [number]
    note = TicketMessage.objects.get(ticket_number=new.number, kind="note")
    assert not note.public and f"Possibly related to #{number}" in note.text


def test_a_crafted_message_id_cannot_suppress_the_related_note(settings: Settings, mail: MailStack) -> None:
    """The note's id is not computable from what the sender sends: an earlier email carrying the id the
    note would get from the sender's own Message-ID alone does not stop the note."""
    import hashlib

    number, ack = victim_ticket(settings, mail)
    Ticket.objects(number=number).update_one(set__status="closed")
    guess = hashlib.sha256(f"<stranger-reply-1@attacker.example>:{number}".encode()).hexdigest()[:32]
    decoy = raw_email(
        sender="mallory@attacker.example", subject="hello", message_id=f"<related-{guess}@internal.helpdesk.invalid>"
    )
    assert isinstance(ingest(decoy, settings), Created)
    outcome = ingest(attack("stranger_reply_template.eml", number=number, message_id=ack.message_id), settings)
    assert isinstance(outcome, Created)
    note = TicketMessage.objects.get(ticket_number=outcome.ticket_number, kind="note")
    assert f"Possibly related to #{number}" in note.text


def test_requester_participant_staff_and_recipient_may_thread(settings: Settings, mail: MailStack) -> None:
    original = raw_email(sender="vera@victim.example", subject="Payroll", Cc="boss@victim.example")
    number = ingest(original, settings).ticket_number
    [ack] = mail.wait_for_sink(1)
    assert ingest(reply_to(bytes(ack), sender="vera@victim.example"), settings) == Threaded(number)
    assert ingest(reply_to(original, sender="boss@victim.example", body="Boss here"), settings) == Threaded(number)
    from tests.web_support import make_user

    make_user("agent@example.test")
    assert ingest(reply_to(original, sender="agent@example.test", body="On it"), settings) == Threaded(number)
    # Someone we emailed about the ticket (not yet a participant) may answer that email.
    sent = queue_email(
        kind="notification",
        to=["it@victim.example"],
        subject="Payroll",
        text="?",
        domain="example.test",
        ticket_number=number,
    )
    forwarded = raw_email(sender="it@victim.example", subject="Re: payroll", In_Reply_To=sent.message_id)
    assert ingest(forwarded, settings) == Threaded(number)
    # ... but nobody else may answer that same email.
    other = raw_email(sender="x@attacker.example", subject="Re: payroll", In_Reply_To=sent.message_id)
    assert isinstance(ingest(other, settings), Created)


def test_fake_bounce_quoting_our_id_in_text_is_not_a_note(settings: Settings, mail: MailStack) -> None:
    number, ack = victim_ticket(settings, mail)
    outcome = ingest(attack("fake_bounce_template.eml", message_id=ack.message_id), settings)
    assert isinstance(outcome, Ignored)
    assert TicketMessage.objects(ticket_number=number, kind="note").count() == 0
    assert Ticket.objects.count() == 1


def test_real_delivery_report_for_our_email_becomes_a_note(settings: Settings, mail: MailStack) -> None:
    number, ack = victim_ticket(settings, mail)
    outcome = ingest(attack("real_dsn_template.eml", message_id=ack.message_id), settings)
    assert outcome == Threaded(number, note=True)
    note = TicketMessage.objects.get(ticket_number=number, kind="note")
    assert not note.public
    # The same report about a Message-ID we never sent is ignored.
    unknown = attack("real_dsn_template.eml", message_id="<not-ours@example.test>").replace(b"real-dsn-1", b"dsn-2")
    assert isinstance(ingest(unknown, settings), Ignored)


def test_message_without_message_id_delivered_twice_is_one_ticket(settings: Settings, mail: MailStack) -> None:
    raw = attack("no_message_id.eml")
    first = ingest(
        b"Received: from relay-a.example by mx.example.test; Tue, 1 Dec 2026 04:16:01 +0000\r\n" + raw, settings
    )
    again = ingest(
        b"Received: from relay-b.example by mx2.example.test; Tue, 1 Dec 2026 09:00:00 +0000\r\n" + raw, settings
    )
    assert isinstance(first, Created) and again == Duplicate(first.ticket_number)
    assert Ticket.objects.count() == 1 and len(mail.wait_for_sink(1)) == 1
    different = raw.replace(b"every page", b"every second page")
    assert isinstance(ingest(different, settings), Created)


def test_bidi_controls_are_removed_from_subject_name_and_filename(settings: Settings, mail: MailStack) -> None:
    outcome = ingest(attack("bidi_everywhere.eml"), settings)
    ticket = Ticket.objects.get(number=outcome.ticket_number)
    entry = TicketMessage.objects.get(ticket_number=ticket.number)
    assert ticket.subject == "Invoice fdp.exe"
    assert entry.from_name == "Accgnitnuo"
    assert [a.filename for a in entry.attachments] == ["invoicefdp.exe"]
    [ack] = mail.wait_for_sink(1)
    assert "\u202e" not in str(ack["Subject"])


def test_auto_reply_is_labelled_for_agents_and_off_the_status_page(settings: Settings, mail: MailStack) -> None:
    from tests.web_support import cookie_login, make_user
    from webadmin import create_app

    created = ingest(raw_email(sender="ann@customer.example", subject="Printer on fire"), settings)
    ack = OutboundEmail.objects.get(kind="ack")
    ooo = attack("out_of_office_template.eml", sender="ann@customer.example", number=1, message_id=ack.message_id)
    assert ingest(ooo, settings) == Threaded(created.ticket_number)
    link = next(line for line in ack.text.splitlines() if "/status/" in line)
    app = create_app(settings)
    status = app.test_client().get("/status/" + link.rsplit("/", 1)[1]).get_data(as_text=True)
    assert "Printer on fire" in status and "OOO-MARKER-3391" not in status
    make_user("admin@example.test", role="admin")
    client = app.test_client()
    cookie_login(client, "admin@example.test")
    page = client.get(f"/tickets/{created.ticket_number}").get_data(as_text=True)
    assert "OOO-MARKER-3391" in page and re.search(r'class="pill auto-reply">auto-reply<', page)


def test_failed_dmarc_at_our_server_means_no_ack_and_review(db: str, mail: MailStack) -> None:
    settings = make_settings(db, mail, authserv_id="mx.example.test")
    outcome = ingest(attack("dmarc_fail.eml"), settings)
    assert isinstance(outcome, Created) and not outcome.acknowledged
    ticket = Ticket.objects.get(number=outcome.ticket_number)
    assert ticket.security_flags and "dmarc=fail" in ticket.security_flags[0]
    assert OutboundEmail.objects(kind="ack").count() == 0
    # A failure reported by some other server (a sender can write any header) changes nothing.
    other = ingest(attack("dmarc_fail_forged_authserv.eml"), settings)
    assert isinstance(other, Created) and other.acknowledged
    assert mail.wait_for_sink(1)[0]["X-Sink-Rcpt-To"] == "<ann@ann.example>"


def test_acknowledgement_echoes_no_links_no_name_and_a_short_subject(settings: Settings, mail: MailStack) -> None:
    outcome = ingest(attack("backscatter_subject.eml"), settings)
    assert isinstance(outcome, Created) and outcome.acknowledged
    [ack] = mail.wait_for_sink(1)
    subject, body = str(ack["Subject"]), ack.get_content().replace("\r\n", "\n")
    assert len(subject) <= 80 and "spam.example" not in subject and "http" not in subject
    assert "prize" not in body and "spam.example" not in body and body.startswith("Hello,\n")


def test_overall_hourly_acknowledgement_cap(db: str, mail: MailStack) -> None:
    settings = make_settings(db, mail, ack_limit_total_per_hour=2)
    outcomes = [ingest(raw_email(sender=f"person{i}@example{i}.test", subject=f"Case {i}"), settings) for i in range(4)]
    assert [o.acknowledged for o in outcomes] == [True, True, False, False]
    assert len(mail.wait_for_sink(2)) == 2 and Ticket.objects.count() == 4


@pytest.mark.parametrize(
    ("from_header", "subject_header", "expected_sender", "expected_name"),
    [
        # an encoded display name that holds an address is a name, never the sender
        ("=?utf-8?q?ceo=40bank=2Eexample?= <eve@attacker.example>", "Hi", "eve@attacker.example", "ceo@bank.example"),
        ('"=?utf-8?b?dmVyYUB2aWN0aW0uZXhhbXBsZQ==?=" <eve@attacker.example>', "Hi", "eve@attacker.example", None),
        # CR/LF and NUL inside encoded words
        ("=?utf-8?q?Bob=0D=0ABcc=3A_x=40y=2Eexample?= <bob@example.test>", "Hi", "bob@example.test", None),
        (
            "=?utf-8?q?Nul=00Name?= <nul@example.test>",
            "=?utf-8?q?Sub=00ject=0D=0AX-Evil=3A_1?=",
            "nul@example.test",
            None,
        ),
        # bidi override in name and subject
        (
            "=?utf-8?b?4oCuZXZpbA==?= <bidi@example.test>",
            "=?utf-8?b?UGF5IOKArmZkcC5leGU=?=",
            "bidi@example.test",
            "evil",
        ),
        # a 2,000-character subject
        ("Long <long@example.test>", "A" * 2000, "long@example.test", "Long"),
    ],
)
def test_hostile_headers(
    settings: Settings, mail: MailStack, from_header: str, subject_header: str, expected_sender: str, expected_name
) -> None:
    raw = (
        f"From: {from_header}\r\nTo: support@example.test\r\nSubject: {subject_header}\r\n"
        f"Message-ID: <hostile-{abs(hash(from_header + subject_header))}@x.example>\r\n\r\nHello.\r\n"
    ).encode()
    outcome = ingest(raw, settings)
    assert isinstance(outcome, Created)
    ticket = Ticket.objects.get(number=outcome.ticket_number)
    entry = TicketMessage.objects.get(ticket_number=ticket.number)
    assert ticket.requester_email == expected_sender
    for text in (ticket.subject, entry.from_name):
        assert not re.search(r"[\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069]", text), repr(text)
    assert len(ticket.subject) <= 998
    if expected_name is not None:
        assert entry.from_name == expected_name
    [ack] = mail.wait_for_sink(1)
    assert ack["X-Sink-Rcpt-To"] == f"<{expected_sender}>" and ack["Bcc"] is None and ack["X-Evil"] is None
    assert len(str(ack["Subject"])) <= 80
