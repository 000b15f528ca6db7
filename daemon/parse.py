"""Raw bytes -> a typed `ParsedEmail`. Pure: no database, no network, never raises on broken mail
except `UnparseableEmail` when there is nothing we could turn into a ticket.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import hashlib
import re
from dataclasses import dataclass, field
from email.message import Message

import html2text
import nh3
from mailparser_reply import EmailReplyParser

from daemon.headers import addresses_from_raw, clean_display, clean_filename, raw_header, stable_message_id
from daemon.mime import (
    clean_text,
    decode_bytes,
    header_text,
    message_id_tokens,
    parse_date,
    part_filename,
    part_payload,
    raw_value,
)

SYNTHETIC_DOMAIN = "synthetic.helpdesk.invalid"
NULL_SENDER = "mailer-daemon@null-sender.invalid"
_BARE_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_TICKET_TOKEN = re.compile(r"\[#(\d{1,9})\]")
_NO_REPLY = re.compile(r"^(no[-_.]?reply|do[-_.]?not[-_.]?reply|donotreply|mailer-daemon|postmaster)([+@.-]|$)", re.I)
_AUTO_SUBJECT = re.compile(r"^\s*(auto(matic)?[ -]?(reply|response|antwort)|out of (the )?office|abwesenheit)", re.I)
_BOUNCE_SUBJECT = re.compile(
    r"(undeliver|delivery (status )?notification|returned mail|delivery failure|failure notice|mail delivery)", re.I
)
_INLINE_MSGID = re.compile(r"^message-id:\s*(<[^<>\s]+>)", re.I | re.M)


class UnparseableEmail(ValueError):
    """Nothing usable in the bytes (no headers, no sender): the message goes to quarantine."""


@dataclass
class ParsedAttachment:
    filename: str
    content_type: str
    data: bytes
    content_id: str = ""
    inline: bool = False

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class ParsedEmail:
    message_id: str
    synthetic_message_id: bool
    subject: str
    from_address: str
    from_name: str
    to: list[str]
    cc: list[str]
    in_reply_to: str | None
    references: list[str]
    date: dt.datetime | None
    text: str
    html: str
    new_text: str
    attachments: list[ParsedAttachment] = field(default_factory=list)
    auto_submitted: bool = False
    auto_reason: str = ""
    is_bounce: bool = False
    is_dsn: bool = False  # a real delivery status notification (multipart/report; report-type=delivery-status)
    bounce_original_message_id: str | None = None  # only from the report's own parts, never from free text
    subject_ticket_number: int | None = None
    auth_results: list[str] = field(default_factory=list)  # raw Authentication-Results values, topmost first

    @property
    def thread_ids(self) -> list[str]:
        """Message-IDs this message answers, nearest first (In-Reply-To, then References newest first)."""
        ids = [self.in_reply_to] if self.in_reply_to else []
        ids += [ref for ref in reversed(self.references) if ref not in ids]
        return ids

    @property
    def content_digest(self) -> str:
        """What the message says (sender, subject, text, attachments), blind to transport headers and line ends."""
        parts = [self.from_address, " ".join(self.subject.split()), " ".join(self.text.split())]
        parts += [f"{a.filename}:{a.size}" for a in self.attachments]
        return hashlib.sha256("\x1f".join(parts).encode("utf-8", "replace")).hexdigest()[:32]

    def addresses(self) -> list[str]:
        return list(dict.fromkeys([self.from_address, *self.to, *self.cc]))


def parse_email(raw: bytes) -> ParsedEmail:
    """Parse one RFC 5322 message (bytes exactly as fetched)."""
    raw = raw or b""
    if not raw.strip():
        raise UnparseableEmail("empty message")
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    if not message.keys():
        raise UnparseableEmail("no headers")

    senders = _sender(message)
    if senders is None:
        raise UnparseableEmail("no sender address (From, Reply-To, Sender and Return-Path are all missing)")
    from_name, from_address = senders

    message_ids = message_id_tokens(header_text(message, "Message-ID"))
    synthetic = not message_ids
    in_reply_to: str | None = next(iter(message_id_tokens(header_text(message, "In-Reply-To"))), None)
    references = list(dict.fromkeys(message_id_tokens(header_text(message, "References"))))
    subject = clean_display(header_text(message, "Subject"))
    to = [a for _, a in addresses_from_raw(_raw_header(message, "To"))]
    date = parse_date(header_text(message, "Date"))

    text_parts: list[str] = []
    html_parts: list[str] = []
    attachments: list[ParsedAttachment] = []
    report_headers: list[str] = []
    _collect(message, text_parts, html_parts, attachments, report_headers)
    html = "\n".join(html_parts)
    text = "\n\n".join(t for t in text_parts if t.strip())
    if not text.strip() and html:
        text = _html_to_text(html)
    text = clean_text(text)
    if message_ids:
        message_id = message_ids[0]
    else:  # what the message says, not its transport: a re-delivery with other Received: lines is the same
        message_id = stable_message_id(date, from_address, to, subject, text, SYNTHETIC_DOMAIN)

    parsed = ParsedEmail(
        message_id=message_id,
        synthetic_message_id=synthetic,
        subject=subject,
        from_address=from_address,
        from_name=from_name,
        to=to,
        cc=[a for _, a in addresses_from_raw(_raw_header(message, "Cc"))],
        in_reply_to=in_reply_to,
        references=references,
        date=date,
        text=text,
        html=nh3.clean(html) if html else "",
        new_text=_new_text(text),
        attachments=attachments,
    )
    match = _TICKET_TOKEN.search(subject)
    parsed.subject_ticket_number = int(match.group(1)) if match else None
    parsed.auto_reason = _auto_reason(message, from_address, subject)
    parsed.auto_submitted = bool(parsed.auto_reason)
    parsed.is_dsn = _is_dsn(message)
    parsed.is_bounce = parsed.is_dsn or _is_bounce(message, from_address, subject)
    if parsed.is_bounce:
        parsed.auto_submitted, parsed.auto_reason = True, parsed.auto_reason or "bounce"
        # a real DSN names the original in its report parts; other bounces only in free text (informative)
        blocks = report_headers if parsed.is_dsn else [*report_headers, text]
        parsed.bounce_original_message_id = _original_message_id(blocks)
    parsed.auth_results = [
        raw_header(value)[:2000] for name, value in message.raw_items() if name.lower() == "authentication-results"
    ]
    return parsed


def _raw_header(message: Message, name: str) -> str:
    value = raw_value(message, name)
    return raw_header(value) if value is not None else ""


def _sender(message: Message) -> tuple[str, str] | None:
    for name in ("From", "Reply-To", "Sender", "Return-Path"):
        value = _raw_header(message, name)
        pairs = addresses_from_raw(value)
        if pairs:
            return pairs[0]
        bare = _BARE_ADDRESS.search(value)  # e.g. `From: Big Bug bb@bug.com` (no angle brackets)
        if bare:
            return clean_display(header_text(message, name)[: bare.start()], 200), bare.group(0).lower()
    if header_text(message, "Return-Path").strip() == "<>" or message.get_content_type() == "multipart/report":
        return "", NULL_SENDER  # a bounce from the null sender: still a bounce, not junk
    return None


def _collect(
    part: Message,
    text_parts: list[str],
    html_parts: list[str],
    attachments: list[ParsedAttachment],
    report_headers: list[str],
) -> None:
    """Walk the MIME tree; message/rfc822 parts become attachments and are not descended into."""
    content_type = (part.get_content_type() or "text/plain").lower()
    if part.is_multipart() and not content_type.startswith("message/"):
        for child in part.get_payload() or []:
            if isinstance(child, Message):
                _collect(child, text_parts, html_parts, attachments, report_headers)
        return
    disposition = header_text(part, "Content-Disposition").split(";")[0].strip().lower()
    filename = clean_filename(part_filename(part))
    content_id = header_text(part, "Content-ID").strip().strip("<>")
    if content_type in ("message/rfc822", "text/rfc822-headers", "message/global"):
        data = _embedded_bytes(part)
        report_headers.append(decode_bytes(data[:20000], "utf-8"))
        attachments.append(ParsedAttachment(filename or "message.eml", content_type, data, content_id))
        return
    is_attachment = disposition == "attachment" or bool(filename) and disposition != "inline"
    if content_type in ("text/plain", "text/html") and not is_attachment and not filename:
        body = decode_bytes(part_payload(part), part.get_content_charset())
        (html_parts if content_type == "text/html" else text_parts).append(body)
        return
    if content_type == "message/delivery-status":
        report_headers.append(decode_bytes(part_payload(part), "utf-8"))
    data = part_payload(part)
    inline = disposition == "inline" or (bool(content_id) and disposition != "attachment")
    default_name = "attachment" if not content_type.startswith("message/") else "report.txt"
    attachments.append(ParsedAttachment(filename or default_name, content_type[:127], data, content_id[:255], inline))


def _embedded_bytes(part: Message) -> bytes:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        try:
            return payload[0].as_bytes()
        except (UnicodeError, LookupError, ValueError, TypeError, AttributeError):
            return payload[0].as_string().encode("utf-8", "replace")
    return part_payload(part)


def _html_to_text(html: str) -> str:
    converter = html2text.HTML2Text()
    converter.ignore_images = True
    converter.body_width = 0
    try:
        return converter.handle(html).strip()
    except Exception:  # html2text is a best-effort converter over hostile input
        return re.sub(r"<[^>]+>", " ", html)


def _new_text(text: str) -> str:
    """The text without quoted replies and signature; the whole text when stripping leaves nothing."""
    if not text.strip() or len(text) > 200_000:
        return text.strip()
    try:
        reply = EmailReplyParser(languages=["en", "de"]).parse_reply(text)
    except Exception:  # a third-party heuristic over hostile input; fall back to the full text
        reply = None
    return (reply or text).strip()


def _auto_reason(message: Message, from_address: str, subject: str) -> str:
    auto_submitted = header_text(message, "Auto-Submitted").strip().lower()
    if auto_submitted and auto_submitted != "no":
        return f"Auto-Submitted: {auto_submitted[:40]}"
    if message.get("X-Auto-Response-Suppress") is not None:
        return "X-Auto-Response-Suppress"
    if message.get("X-Autoreply") is not None or message.get("X-Autorespond") is not None:
        return "X-Autoreply"
    precedence = header_text(message, "Precedence").strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"Precedence: {precedence}"
    if message.get("List-Id") is not None:
        return "List-Id"
    if _NO_REPLY.match(from_address):
        return "no-reply sender"
    if _AUTO_SUBJECT.match(subject):
        return "auto-reply subject"
    return ""


def _is_dsn(message: Message) -> bool:
    content_type = (message.get_content_type() or "").lower()
    report_type = (message.get_param("report-type") or "") if content_type == "multipart/report" else ""
    return content_type == "multipart/report" and str(report_type).lower() == "delivery-status"


def _is_bounce(message: Message, from_address: str, subject: str) -> bool:
    """Looks like a bounce (not acknowledged, never a ticket); only a real DSN may become a note."""
    local = from_address.split("@")[0].lower()
    return local in ("mailer-daemon", "postmaster") and bool(_BOUNCE_SUBJECT.search(subject) or not subject)


def _original_message_id(report_headers: list[str]) -> str | None:
    for block in report_headers:
        match = _INLINE_MSGID.search(block)
        if match:
            return match.group(1)
    return None
