"""daemon.parse: pure, typed, and never crashes on the real-world corpus."""

from __future__ import annotations

import pathlib

import pytest

from daemon.parse import SYNTHETIC_DOMAIN, UnparseableEmail, parse_email
from tests.daemon_support import raw_email


def test_every_corpus_email_parses_or_is_refused_with_a_reason(corpus: pathlib.Path) -> None:
    files = sorted((corpus / "emails").rglob("*.eml"))
    assert len(files) >= 250
    parsed = refused = 0
    for path in files:
        try:
            email = parse_email(path.read_bytes())
        except UnparseableEmail as exc:
            assert str(exc), path
            refused += 1
            continue
        assert email.message_id.startswith("<") and email.message_id.endswith(">"), path
        assert "@" in email.from_address, path
        assert "\x00" not in email.text + email.subject + email.html, path
        parsed += 1
    assert parsed > refused * 5  # most of the corpus is ordinary, usable mail


def test_encoded_subject_and_rfc2231_filename(corpus: pathlib.Path) -> None:
    bounce = parse_email((corpus / "emails/sisimai/bsd__lhost-x5-01.eml").read_bytes())
    assert bounce.subject == "Returned mail: User unknown"
    assert bounce.is_bounce and bounce.auto_submitted
    assert bounce.bounce_original_message_id == "<201510150656.CAT22222@vrrr-22.int.example.co.jp>"
    with_file = parse_email(
        (corpus / "emails/mikel_mail/attachment_emails__attachment_with_quoted_filename.eml").read_bytes()
    )
    assert [(a.filename, a.content_type) for a in with_file.attachments] == [("Eelanalüüsi päring.jpg", "image/jpeg")]


def test_missing_message_id_gets_a_stable_synthetic_one() -> None:
    raw = b"From: a@example.test\r\nSubject: hi\r\n\r\nbody\r\n"
    first, second = parse_email(raw), parse_email(raw)
    assert first.synthetic_message_id and first.message_id == second.message_id
    assert first.message_id.endswith(f"@{SYNTHETIC_DOMAIN}>")
    assert parse_email(raw + b"more").message_id != first.message_id


@pytest.mark.parametrize(
    ("headers", "sender", "subject", "expected"),
    [
        ({"Auto_Submitted": "auto-replied"}, "bob@example.test", "Re: hi", True),
        ({"Auto_Submitted": "no"}, "bob@example.test", "Re: hi", False),
        ({"X_Auto_Response_Suppress": "All"}, "bob@example.test", "hi", True),
        ({"Precedence": "bulk"}, "news@example.test", "Newsletter", True),
        ({"Precedence": "junk"}, "x@example.test", "hi", True),
        ({"List_Id": "<list.example.test>"}, "x@example.test", "hi", True),
        ({}, "no-reply@shop.example", "Your order", True),
        ({}, "noreply@shop.example", "Your order", True),
        ({}, "bob@example.test", "Out of Office: back Monday", True),
        ({}, "bob@example.test", "My printer is broken", False),
        ({}, "noreplyguy@example.test", "hello", False),
    ],
)
def test_auto_submitted_detection(headers: dict[str, str], sender: str, subject: str, expected: bool) -> None:
    parsed = parse_email(raw_email(sender=sender, subject=subject, **headers))
    assert parsed.auto_submitted is expected, parsed.auto_reason


def test_html_only_mail_is_converted_and_sanitised() -> None:
    raw = (
        b"From: a@example.test\r\nSubject: html\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b"<p>Hello <b>there</b></p><script>alert(1)</script><img src=x onerror=alert(2)>"
    )
    parsed = parse_email(raw)
    assert "Hello **there**" in parsed.text
    assert "<script" not in parsed.html and "onerror" not in parsed.html and "<b>there</b>" in parsed.html


def test_broken_charset_never_raises() -> None:
    raw = (
        b"From: a@example.test\r\nSubject: =?x-made-up?B?SGVsbG8=?=\r\n"
        b"Content-Type: text/plain; charset=fakescii\r\n\r\nCaf\xe9 \xff\xfe\x00 ok\r\n"
    )
    parsed = parse_email(raw)
    assert "Caf" in parsed.text and "\x00" not in parsed.text


def test_quoted_reply_is_stripped_from_new_text() -> None:
    body = "Still broken, see log.\n\nOn Mon, 1 Jan 2024 at 10:00, Support <support@example.test> wrote:\n> old text\n"
    parsed = parse_email(raw_email(body=body))
    assert parsed.new_text.startswith("Still broken") and "old text" not in parsed.new_text
    assert "old text" in parsed.text


def test_subject_ticket_token_and_no_sender() -> None:
    assert parse_email(raw_email(subject="Re: [#42] Printer")).subject_ticket_number == 42
    with pytest.raises(UnparseableEmail, match="no sender"):
        parse_email(b"Subject: nobody\r\n\r\ntext\r\n")
    with pytest.raises(UnparseableEmail):
        parse_email(b"")
