"""Send stored outbound emails through Flask-Mail, with retries, backoff and a claim per attempt.

Each attempt is claimed by inserting `_id = f"{email_id}:{attempt}"` (unique, so exactly one sender
wins even on FerretDB, whose conditional updates are not atomic). A sender that crashes mid-send
leaves the email in "sending" until its lease expires; then the next attempt is claimed.

A manual retry of a failed email starts a new retry generation (an `_id` insert of its own) and resets
`attempts`; its attempts are claimed as `f"{email_id}:{generation}:{attempt}"`, so they never collide
with the claims of earlier generations.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import threading
import time
from contextlib import ExitStack
from typing import Any, cast

from flask import Flask
from flask_mail import Mail, Message
from pymongo.errors import DuplicateKeyError

from config import Settings
from models import OutboundEmail, ticket_index, utcnow

logger = logging.getLogger(__name__)
CLAIMS = "outbox_claims"
RETRIES = "outbox_retries"  # `_id` f"{email_id}:{n}" for the n-th manual retry: 1, 2, ... without gaps
SENT_MARKERS = "outbox_sent"  # inserted the moment an email is accepted by SMTP; folded into `state` later
SEND_LEASE = dt.timedelta(seconds=120)
MAX_BACKOFF = 3600.0
_apps: dict[int, tuple[Settings, Flask, Mail]] = {}
_apps_lock = threading.Lock()


def send_one(email_id: object, settings: Settings) -> bool:
    """Send one stored email now (also a failed one: a manual retry). True when it went out."""
    email = OutboundEmail.objects(id=email_id).first()
    if email is None or email.state == "sent":
        return False
    if email.state == "sending" and email.lease_until and email.lease_until > utcnow():
        return False
    if not _claim(email):
        return False
    return _send_claimed([email], settings) == 1


def send_due(settings: Settings, limit: int = 50) -> int:
    """Send queued emails whose time has come (and ones a crashed sender left); returns how many went out."""
    reconcile_sent()
    now = utcnow()
    # Candidates from the process's in-memory index of unsent emails (a query here would read every
    # email ever sent, on FerretDB, every two seconds); each is decided on its document.
    pending = ticket_index.shared().outbox_rows()
    due = sorted(
        (r for r in pending if r.state == "queued" and (r.next_attempt_at is None or r.next_attempt_at <= now)),
        key=lambda r: r.next_attempt_at or now,
    )
    stale = [r for r in pending if r.state == "sending" and r.lease_until is not None and r.lease_until < now]
    claimed = []
    for row in [*due, *stale][:limit]:
        email = OutboundEmail.objects(id=row.id).first()
        if email is None or not _is_due(email, now):
            continue
        if _claim(email):
            claimed.append(email)
    return _send_claimed(claimed, settings) if claimed else 0


def _is_due(email: OutboundEmail, now: dt.datetime) -> bool:
    if email.state == "queued":
        return email.next_attempt_at is None or email.next_attempt_at <= now
    return email.state == "sending" and email.lease_until is not None and email.lease_until < now


def retry_failed(email_id: object) -> bool:
    """Put a failed email back in the queue for the next outbox pass (the web panel's "retry").

    It gets the full number of attempts again, claimed under a new retry generation.
    """
    email = OutboundEmail.objects(id=email_id, state="failed").only("id").first()
    if email is None:
        return False
    _start_retry_generation(email.id)  # before attempts go back to 0: a claim of attempt 1 then uses it
    return bool(
        OutboundEmail.objects(id=email.id, state="failed").update_one(
            set__state="queued", set__next_attempt_at=utcnow(), set__attempts=0, unset__lease_until=True
        )
    )


def retry_generation(email_id: object) -> int:
    """How many manual retries this email has had (0: none); each retry's attempts are claimed apart."""
    retries = OutboundEmail._get_db()[RETRIES]
    generation = 0
    while retries.find_one({"_id": f"{email_id}:{generation + 1}"}, {"_id": 1}) is not None:
        generation += 1
    return generation


def _start_retry_generation(email_id: object) -> int:
    retries = OutboundEmail._get_db()[RETRIES]
    generation = retry_generation(email_id) + 1
    while True:  # an insert per generation: two concurrent retries never share one
        try:
            retries.insert_one({"_id": f"{email_id}:{generation}", "at": utcnow()})
            return generation
        except DuplicateKeyError:
            generation += 1


def claim_id(email_id: object, generation: int, attempt: int) -> str:
    """The unique claim `_id` of one send attempt (generation 0 keeps the original form)."""
    return f"{email_id}:{attempt}" if generation == 0 else f"{email_id}:{generation}:{attempt}"


def reconcile_sent(limit: int = 1000, budget_seconds: float = 1.0) -> int:
    """Fold sent markers (batch sends, crashed senders) into OutboundEmail.state, within a time budget."""
    markers = OutboundEmail._get_db()[SENT_MARKERS]
    found = list(markers.find().limit(limit))  # only markers not folded in yet: a small collection
    started = time.monotonic()
    for count, marker in enumerate(found):
        if time.monotonic() - started > budget_seconds:
            return count
        OutboundEmail.objects(id=marker["email_id"]).update_one(
            set__state="sent", set__sent_at=marker["at"], unset__lease_until=True, unset__last_error=True
        )
        markers.delete_one({"_id": marker["_id"]})
    return len(found)


def was_sent(email: OutboundEmail) -> bool:
    """True when SMTP accepted this email, even if its `state` does not say so yet."""
    return OutboundEmail._get_db()[SENT_MARKERS].find_one({"_id": str(email.id)}) is not None


def _claim(email: OutboundEmail) -> bool:
    if was_sent(email):  # accepted by SMTP before its state was updated (e.g. a crash): never twice
        return False
    attempt = (email.attempts or 0) + 1
    key = claim_id(email.id, retry_generation(email.id), attempt)
    claims = OutboundEmail._get_db()[CLAIMS]
    try:
        claims.insert_one({"_id": key, "at": utcnow()})
    except DuplicateKeyError:
        held = claims.find_one({"_id": key}) or {}
        if held.get("at") and held["at"] < utcnow() - SEND_LEASE:
            # its sender died before recording the attempt: skip that number so the next claim can win
            OutboundEmail.objects(id=email.id, attempts=attempt - 1).update_one(set__attempts=attempt)
        return False
    lease = utcnow() + SEND_LEASE
    OutboundEmail.objects(id=email.id).update_one(set__state="sending", set__attempts=attempt, set__lease_until=lease)
    email.attempts, email.state, email.lease_until = attempt, "sending", lease
    return True


def _send_claimed(emails: list[OutboundEmail], settings: Settings, *, defer_state: bool = False) -> int:
    """Send claimed emails over one SMTP connection; record success or the error on each record.

    `defer_state`: record success as a sent marker only (an insert: fast on FerretDB, where updates
    scan the collection); `reconcile_sent` folds the markers into `state` in bulk.
    """
    app, mail = _mail_app(settings)
    sent = 0
    with app.app_context(), ExitStack() as stack:
        connection: Any = None
        for index, email in enumerate(emails):
            try:
                if connection is None:
                    connection = stack.enter_context(cast(Any, mail.connect()))
                connection.send(_build(email, settings))
            except (OSError, smtplib.SMTPException, ValueError) as exc:
                _failed(email, settings, f"{type(exc).__name__}: {exc}")
                if isinstance(exc, OSError | smtplib.SMTPServerDisconnected):
                    for rest in emails[index + 1 :]:  # the server is unreachable: give the rest back untouched
                        _release(rest)
                    break
                continue
            _mark_sent(email)
            if not defer_state:
                OutboundEmail.objects(id=email.id).update_one(
                    set__state="sent", set__sent_at=utcnow(), unset__lease_until=True, unset__last_error=True
                )
                OutboundEmail._get_db()[SENT_MARKERS].delete_one({"_id": str(email.id)})
            email.state = "sent"
            sent += 1
            logger.info("sent %s for #%s (attempt %s)", email.kind, email.ticket_number, email.attempts)
    return sent


def _mark_sent(email: OutboundEmail) -> None:
    try:
        OutboundEmail._get_db()[SENT_MARKERS].insert_one(
            {"_id": str(email.id), "email_id": email.id, "batch": email.batch, "at": utcnow()}
        )
    except DuplicateKeyError:
        pass


def _failed(email: OutboundEmail, settings: Settings, error: str) -> None:
    final = email.attempts >= settings.outbox_max_attempts
    delay = min(MAX_BACKOFF, settings.outbox_backoff_seconds * 2 ** max(0, email.attempts - 1))
    OutboundEmail.objects(id=email.id).update_one(
        set__state="failed" if final else "queued",
        set__last_error=error[:1000],
        set__next_attempt_at=utcnow() + dt.timedelta(seconds=delay),
        unset__lease_until=True,
    )
    email.state = "failed" if final else "queued"
    log = logger.error if final else logger.warning
    log("sending %s for #%s failed (attempt %s): %s", email.kind, email.ticket_number, email.attempts, error)


def _release(email: OutboundEmail) -> None:
    """Undo a claim that was never tried (the attempt number stays used; the count is informational)."""
    OutboundEmail.objects(id=email.id).update_one(set__state="queued", unset__lease_until=True)
    email.state = "queued"


def _build(email: OutboundEmail, settings: Settings) -> Message:
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
    with _apps_lock:
        entry = _apps.get(id(settings))  # the entry keeps `settings` alive, so its id is not reused
        if entry is None:
            app = Flask("daemon.outbox")
            app.config.update(settings.flask_config())
            entry = _apps[id(settings)] = (settings, app, Mail(app))
        return entry[1], entry[2]


def deliver_claimed(emails: list[OutboundEmail], settings: Settings) -> int:
    """Send emails that this process stored already claimed (fresh acknowledgements) at once.

    A batch records success as sent markers only (inserts; on FerretDB every update scans its
    collection); the outbox job folds them into `state` (`reconcile_sent`), and no claim ever
    resends an email that has a marker.
    """
    emails = [email for email in emails if email.state == "sending"]
    if not emails:
        return 0
    return _send_claimed(emails, settings, defer_state=len(emails) > 1)
