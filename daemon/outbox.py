"""Send stored outbound emails through Flask-Mail, with retries and backoff, each attempt under a claim.

An attempt is claimed atomically (models/claims.py): state "queued" -> "sending" with an owner and a lease,
and `attempts` + 1. A sender that crashes mid-send leaves the email "sending" until its lease expires; the
next pass then claims it again. After SMTP accepted it, "sent" is written at once, conditional on the claim,
before the next email is sent.
The web panel only queues ("queued", `next_attempt_at` now) and retries failed emails by setting them back to
"queued" with `attempts` 0; the outbox job (every OUTBOX_INTERVAL_SECONDS) sends them.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import threading
import time
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, cast

from pymongo import UpdateOne
from pymongo.errors import ConnectionFailure, OperationFailure

from config import Settings
from daemon.mailbox_settings import MailboxUnavailable, sender_settings
from daemon.oauth import MailAuthError, smtp_login
from daemon.pressure import intake_busy
from models import OutboundEmail, Ticket, utcnow
from models.claims import claim, claim_batch, finish, make_owner_id

if TYPE_CHECKING:  # Flask and Flask-Mail load with the first email sent, not in front of the daemon's start
    from flask import Flask
    from flask_mail import Mail, Message

logger = logging.getLogger(__name__)
SEND_LEASE_SECONDS = 120
MARK_SENT_PATIENCE_SECONDS = 60  # < SEND_LEASE_SECONDS: nobody else sends it meanwhile
MAX_BACKOFF = 3600.0
CUSTOMER_KINDS = ("ack", "reply")  # sent during a burst of intake; staff notifications wait for it to pass
SENDER_ID = make_owner_id()  # this process's claims; acknowledgements stored by ingestion are claimed with it
# no point trying the next email on this connection (unreachable, or refused our login)
CONNECTION_FAILURES = (OSError, smtplib.SMTPServerDisconnected, smtplib.SMTPAuthenticationError, MailAuthError)
_apps: dict[int, tuple[Settings, Flask, Mail]] = {}
_apps_lock = threading.Lock()


def due_filters(now: dt.datetime, kinds: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """Queued and due (index state + next_attempt_at), or left "sending" by a sender whose lease expired;
    of the given kinds only, when `kinds` is given."""
    filters: list[dict[str, Any]] = [
        {"state": "queued", "next_attempt_at": {"$lte": now}},
        {"state": "sending", "lease_until": {"$lt": now}},
    ]
    if kinds is not None:
        for ready in filters:
            ready["kind"] = {"$in": list(kinds)}
    return filters


def claim_due(limit: int, now: dt.datetime | None = None, kinds: tuple[str, ...] | None = None) -> list[OutboundEmail]:
    """Claim up to `limit` due emails (of `kinds`, when given), oldest due first, with one batch claim per kind of
    readiness (models/claims.claim_batch: atomic per email), under an owner name of this call's own: a batch claim
    must not share its owner with another claimer running meanwhile (the acknowledgement senders use SENDER_ID)."""
    now = now or utcnow()
    owner = make_owner_id()
    claimed: list[OutboundEmail] = []
    for ready in due_filters(now, kinds):
        if len(claimed) >= limit:
            break
        claimed += claim_batch(
            OutboundEmail,
            ready,
            owner,
            SEND_LEASE_SECONDS,
            limit - len(claimed),
            set_fields={"state": "sending"},
            inc={"attempts": 1},
            sort=[("next_attempt_at", 1)] if ready["state"] == "queued" else None,
            now=now,
        )
    return claimed


def send_due(settings: Settings, limit: int = 50) -> int:
    """Send queued emails whose time has come (and ones a crashed sender left); returns how many went out.
    While this process's intake has a backlog, only what customers wait for (daemon/pressure.py)."""
    claimed = claim_due(limit, kinds=CUSTOMER_KINDS if intake_busy() else None)
    return _send_claimed(claimed, settings) if claimed else 0


def send_one(email_id: object, settings: Settings) -> bool:
    """Send one stored email now if it is queued or failed and nobody holds it. True when it went out."""
    email = claim(
        OutboundEmail,
        {"_id": email_id, "state": {"$in": ["queued", "failed"]}},
        SENDER_ID,
        SEND_LEASE_SECONDS,
        set_fields={"state": "sending"},
        inc={"attempts": 1},
    )
    return email is not None and _send_claimed([email], settings) == 1


def retry_failed(email_id: object) -> bool:
    """Put a failed email back in the queue for the next outbox pass, with the full number of attempts again."""
    return bool(
        OutboundEmail.objects(id=email_id, state="failed").update_one(
            set__state="queued", set__next_attempt_at=utcnow(), set__attempts=0, unset__last_error=True
        )
    )


def _send_claimed(emails: list[OutboundEmail], settings: Settings) -> int:
    """Send claimed emails, From the mailbox each belongs to and through its SMTP login: one connection per
    mailbox. A mailbox whose settings cannot be had fails its emails (retried later), not the others'."""
    total = 0
    for address, group in by_mailbox(emails).items():
        try:
            sender = sender_settings(address, settings)
        except MailboxUnavailable as exc:
            for email in group:
                _failed(email, settings, f"{type(exc).__name__}: {exc}")
            continue
        total += _send_over_one_connection(group, sender)
    return total


def by_mailbox(emails: list[OutboundEmail]) -> dict[str, list[OutboundEmail]]:
    """The emails grouped by the address they go out from, in order; an email queued without one goes out
    from the mailbox its ticket came in on (one query on the unique `number` index for all of them)."""
    unknown = {e.ticket_number for e in emails if e.mailbox is None and e.ticket_number is not None}
    came_in_on = {}
    if unknown:
        rows = Ticket._get_collection().find({"number": {"$in": list(unknown)}}, {"number": 1, "mailbox": 1})
        came_in_on = {row["number"]: row.get("mailbox") or "" for row in rows}
    groups: dict[str, list[OutboundEmail]] = {}
    for email in emails:
        address = email.mailbox if email.mailbox is not None else came_in_on.get(email.ticket_number, "")
        groups.setdefault(address, []).append(email)
    return groups


def _send_over_one_connection(emails: list[OutboundEmail], settings: Settings) -> int:
    """Send claimed emails over one SMTP connection; record success (one write each) or the error on each."""
    app, mail = _mail_app(settings)
    total = 0
    with app.app_context(), ExitStack() as stack:
        connection: Any = None
        for index, email in enumerate(emails):
            try:
                if connection is None:
                    opened = stack.enter_context(cast(Any, mail.connect()))
                    smtp_login(opened.host, settings)  # MAIL_AUTH=oauth2: AUTH XOAUTH2 (daemon/oauth.py)
                    connection = opened
                connection.send(_build(email, settings))
            except (OSError, smtplib.SMTPException, ValueError, MailAuthError) as exc:
                _failed(email, settings, f"{type(exc).__name__}: {exc}")
                if isinstance(exc, CONNECTION_FAILURES):
                    for rest in emails[index + 1 :]:  # the server is unreachable: give the rest back untouched
                        _release(rest)
                    break
                continue
            # recorded before the next send, never grouped: a crash then resends at most this one. (Grouping the
            # marks beside the sending was tried: bench/crash_safety.py daemon kills then resent 37.)
            total += _mark_sent([email])
    return total


def _mark_sent(emails: list[OutboundEmail]) -> int:
    """Record "sent" for emails SMTP accepted, conditional on our claim (one round trip); how many."""
    if not emails:
        return 0
    now = utcnow()
    updates = [
        UpdateOne(
            {"_id": email.id, "claimed_by": email.claimed_by},
            {
                "$set": {"state": "sent", "sent_at": now},
                "$unset": {"claimed_by": "", "lease_until": "", "last_error": ""},
            },
        )
        for email in emails
    ]
    # SMTP accepted these: keep trying to record it while the database is away (it restarts within seconds),
    # well inside our claim, rather than leave them to be sent a second time when the claim expires.
    deadline = time.monotonic() + MARK_SENT_PATIENCE_SECONDS
    while True:
        try:
            OutboundEmail._get_collection().bulk_write(updates, ordered=False)
            break
        except (ConnectionFailure, OperationFailure) as exc:
            if time.monotonic() > deadline:
                raise
            logger.warning("could not record %s sent email(s) yet, retrying: %s", len(emails), exc)
            time.sleep(1.0)
    for email in emails:
        email.state = "sent"
        logger.info("sent %s for #%s (attempt %s)", email.kind, email.ticket_number, email.attempts)
    return len(emails)


def _failed(email: OutboundEmail, settings: Settings, error: str) -> None:
    final = email.attempts >= settings.outbox_max_attempts
    delay = min(MAX_BACKOFF, settings.outbox_backoff_seconds * 2 ** max(0, email.attempts - 1))
    finish(
        OutboundEmail,
        email.id,
        email.claimed_by,
        set_fields={
            "state": "failed" if final else "queued",
            "last_error": error[:1000],
            "next_attempt_at": utcnow() + dt.timedelta(seconds=delay),
        },
    )
    email.state = "failed" if final else "queued"
    log = logger.error if final else logger.warning
    log("sending %s for #%s failed (attempt %s): %s", email.kind, email.ticket_number, email.attempts, error)


def _release(email: OutboundEmail) -> None:
    """Give back a claim that was never tried (its attempt is not counted)."""
    finish(
        OutboundEmail,
        email.id,
        email.claimed_by,
        set_fields={"state": "queued", "attempts": max(0, email.attempts - 1)},
    )
    email.state = "queued"


def _build(email: OutboundEmail, settings: Settings) -> Message:
    from flask_mail import Message

    headers = {header.name: header.value for header in email.headers}
    references = [ref for ref in email.references if ref.isascii()]  # EAI Message-IDs need SMTPUTF8 end to end
    if email.in_reply_to and email.in_reply_to.isascii():
        headers["In-Reply-To"] = email.in_reply_to
    if references:
        headers["References"] = " ".join(references)
    message = Message(
        subject=email.subject,
        recipients=list(email.to),
        body=email.text or "",
        html=email.html or None,
        sender=settings.mail_default_sender,
        extra_headers=headers,
    )
    message.msgId = email.message_id
    return message


def _mail_app(settings: Settings) -> tuple[Flask, Mail]:
    """A minimal Flask app carrying the Mail extension, one per settings object."""
    from flask import Flask
    from flask_mail import Mail

    with _apps_lock:
        entry = _apps.get(id(settings))  # the entry keeps `settings` alive, so its id is not reused
        if entry is None:
            app = Flask("daemon.outbox")
            app.config.update(settings.flask_config())
            entry = _apps[id(settings)] = (settings, app, Mail(app))
        return entry[1], entry[2]


def deliver_claimed(emails: list[OutboundEmail], settings: Settings) -> int:
    """Send emails that this process stored already claimed (fresh acknowledgements) at once.

    One claimed by another (crashed) process is left to the outbox job, which takes it once that lease expires.
    """
    emails = [email for email in emails if email.state == "sending" and email.claimed_by == SENDER_ID]
    return _send_claimed(emails, settings) if emails else 0
