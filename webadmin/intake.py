"""Tickets and replies from the web form, the portal and the API, stored for the daemon to ingest.

Each becomes an RFC 822 message built with the standard `email` package (so it is ingested exactly as an
emailed one: ledger, ticket number, acknowledgement, triage, routing) and a `WebSubmission` row. The web
app sends nothing itself: confirmation and sign-in emails go to the outbox.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from config import Settings
from models import Ticket, next_ticket_number, queue_email, utcnow
from models.links import status_url
from models.submissions import WebSubmission, new_token, token_hash

EMAIL_PATTERN = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+$")
CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$")
MAX_SUBJECT = 200
MAX_TEXT = 50_000
MAX_NAME = 100
SOURCE_HEADER = "X-Helpdesk-Source"


class SubmissionRefused(ValueError):
    """Input we do not take (bad address, too large, our own address); str() is the message for the user."""


@dataclass(frozen=True)
class Upload:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class NewTicket:
    email: str
    name: str
    subject: str
    text: str
    attachments: list[Upload] = field(default_factory=list)


def clean_line(value: str, limit: int) -> str:
    """One line of text safe for a header: no control, bidi, zero-width or lone surrogate characters."""
    kept = "".join(" " if ch in "\r\n\t" else ch for ch in value if unicodedata.category(ch) not in ("Cc", "Cf", "Cs"))
    return " ".join(kept.split())[:limit]


def clean_text(value: str) -> str:
    """A body: NULs and lone surrogates (which no encoding can write) removed."""
    return "".join(ch for ch in value if ch != "\x00" and unicodedata.category(ch) != "Cs").strip()


def clean_address(value: str, settings: Settings) -> str:
    address = value.strip().lower()
    if len(address) > 254 or not EMAIL_PATTERN.match(address) or ".." in address or ".@" in address:
        raise SubmissionRefused("Please enter a valid email address.")
    if address.startswith(".") or "-." in address.split("@")[1] or address.split("@")[1].startswith("-"):
        raise SubmissionRefused("Please enter a valid email address.")
    ours = {settings.support_address.lower(), settings.mail_default_sender.lower(), settings.imap_user.lower()}
    if address in ours:
        raise SubmissionRefused("Please enter your own email address, not ours.")
    return address


def validate_ticket(ticket: NewTicket, settings: Settings) -> NewTicket:
    """The ticket with clean fields, or SubmissionRefused saying what is wrong."""
    subject = clean_line(ticket.subject, MAX_SUBJECT)
    text = clean_text(ticket.text)
    if not subject:
        raise SubmissionRefused("Please give your request a subject.")
    if not text:
        raise SubmissionRefused("Please describe your request.")
    if len(text) > MAX_TEXT:
        raise SubmissionRefused(f"The description is too long (at most {MAX_TEXT} characters).")
    total = sum(len(upload.data) for upload in ticket.attachments)
    if total > settings.attachment_max_bytes:
        raise SubmissionRefused(f"Attachments are too large (at most {settings.attachment_max_bytes} bytes).")
    return NewTicket(
        email=clean_address(ticket.email, settings),
        name=clean_line(ticket.name, MAX_NAME),
        subject=subject,
        text=text,
        attachments=ticket.attachments,
    )


def build_message(
    *,
    sender: str,
    name: str,
    subject: str,
    text: str,
    settings: Settings,
    source: str,
    attachments: list[Upload] | tuple[Upload, ...] = (),
    in_reply_to: str | None = None,
) -> tuple[bytes, str]:
    """(the RFC 822 bytes, their Message-ID) of a message from `sender` to the support address."""
    domain = settings.support_address.rsplit("@", 1)[1]
    message_id = f"<web-{secrets.token_hex(16)}@{domain}>"
    message = EmailMessage()
    try:
        message["From"] = Address(display_name=clean_line(name, MAX_NAME), addr_spec=sender)
    except ValueError:  # the email package's stricter address grammar (a header defect)
        raise SubmissionRefused("Please enter a valid email address.") from None
    message["To"] = settings.support_address
    message["Subject"] = clean_line(subject, MAX_SUBJECT + 20)
    message["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    message["Message-ID"] = message_id
    message[SOURCE_HEADER] = source
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    message.set_content(text)
    for upload in attachments:
        content_type = (upload.content_type or "").lower()
        if not CONTENT_TYPE.match(content_type) or content_type.startswith(("multipart/", "message/")):
            content_type = "application/octet-stream"  # never a container type: the bytes are opaque
        maintype, _, subtype = content_type.partition("/")
        message.add_attachment(
            upload.data,
            maintype=maintype,
            subtype=subtype,
            filename=clean_line(upload.filename, 200) or "attachment",
        )
    return message.as_bytes(), message_id


def client_key(address: str | None) -> str:
    return hashlib.sha256((address or "").encode()).hexdigest()[:32]


def status_token_for(settings: Settings, submission_key: str) -> str:
    """The status-link token of an API ticket, derived from the secret key (never stored; only its hash
    is), so a retried request with the same Idempotency-Key gets the same link back."""
    digest = hmac.new(settings.secret_key.encode(), f"status-link:{submission_key}".encode(), hashlib.sha256)
    return digest.hexdigest()


def submit_ready_ticket(
    ticket: NewTicket, settings: Settings, *, source: str, key: str, fingerprint: str = ""
) -> tuple[WebSubmission, str]:
    """A ticket from a confirmed address (an API caller, a signed-in customer), ready for the daemon with its
    number reserved now; (it, its status-link URL)."""
    raw, message_id = build_message(
        sender=ticket.email,
        name=ticket.name,
        subject=ticket.subject,
        text=ticket.text,
        settings=settings,
        source=source,
        attachments=ticket.attachments,
    )
    token = status_token_for(settings, key)
    now = utcnow()
    submission = WebSubmission(
        key=key or secrets.token_hex(20),
        kind="ticket",
        state="ready",
        source=source,
        requester_email=ticket.email,
        raw=raw,
        message_id=message_id,
        ticket_number=next_ticket_number(),
        status_key=token_hash(token),
        fingerprint=fingerprint,
        created_at=now,
        ready_at=now,
    )
    submission.save(force_insert=True)
    return submission, status_url(settings.app_url, token)


def submit_web_ticket(ticket: NewTicket, settings: Settings, *, client: str, confirm_url: str) -> WebSubmission:
    """A web-form ticket, held until its requester confirms the address; queues the confirmation email.

    `confirm_url` has `{token}` where the token goes. The email echoes nothing the submitter typed: the
    address may be someone else's.
    """
    raw, message_id = build_message(
        sender=ticket.email,
        name=ticket.name,
        subject=ticket.subject,
        text=ticket.text,
        settings=settings,
        source="web",
        attachments=ticket.attachments,
    )
    token, confirm_key = new_token()
    now = utcnow()
    submission = WebSubmission(
        key=secrets.token_hex(16),
        kind="ticket",
        state="unconfirmed",
        source="web",
        requester_email=ticket.email,
        raw=raw,
        message_id=message_id,
        confirm_key=confirm_key,
        expires_at=now + dt.timedelta(minutes=settings.portal_confirm_minutes),
        client_key=client,
        created_at=now,
    )
    submission.save(force_insert=True)
    queue_email(
        kind="notification",
        to=[ticket.email],
        subject="Please confirm your support request",
        text=(
            "Hello,\n\n"
            "someone (we hope you) asked us to open a support request for this address on our website.\n"
            f"To send it, open this link within {settings.portal_confirm_minutes} minutes:\n"
            f"{confirm_url.format(token=token)}\n\n"
            "If this was not you, ignore this email: nothing is opened without your confirmation.\n"
        ),
        domain=settings.support_address.rsplit("@", 1)[1],
    )
    return submission


def submit_reply(ticket: Ticket, text: str, attachments: list[Upload], settings: Settings) -> WebSubmission:
    """A requester's reply from the portal, as an email answering the ticket's first message."""
    raw, message_id = build_message(
        sender=ticket.requester_email,
        name="",
        subject=f"Re: [#{ticket.number}] {ticket.subject}",
        text=text,
        settings=settings,
        source="portal",
        attachments=attachments,
        in_reply_to=ticket.source_message_id,
    )
    now = utcnow()
    submission = WebSubmission(
        key=secrets.token_hex(16),
        kind="reply",
        state="ready",
        source="portal",
        requester_email=ticket.requester_email,
        raw=raw,
        message_id=message_id,
        ticket_number=ticket.number,
        created_at=now,
        ready_at=now,
    )
    submission.save(force_insert=True)
    return submission
