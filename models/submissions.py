"""Tickets and replies that customers submit on the web or by API, waiting for the daemon to ingest them.

The web app never ingests mail itself: it builds the submission as an RFC 822 message, stores it here and
the daemon (daemon/web_intake.py) claims it within about half a second and runs it through the same
ingestion as an emailed one. A web-form ticket waits as "unconfirmed" until its requester opens the
single-use link we emailed; an API ticket is "ready" at once, with its ticket number already reserved.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable

from mongoengine import BinaryField, DateTimeField, Document, IntField, StringField
from pymongo import ReturnDocument

from models.base import utcnow

SUBMISSION_KINDS = ("ticket", "reply")
SUBMISSION_STATES = ("unconfirmed", "ready", "ingested", "failed")
TOKEN_BYTES = 32
MAX_INGEST_ATTEMPTS = 5


def token_hash(token: str) -> str:
    """What we store of a link token: its SHA-256 (a copy of the database yields no working link)."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def new_token() -> tuple[str, str]:
    """(an opaque 256-bit link token, its stored hash)."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, token_hash(token)


class WebSubmission(Document):
    """One ticket or reply from the web or the API, as the raw email the daemon will ingest."""

    key = StringField(primary_key=True)  # random, or derived from an Idempotency-Key (one submission per key)
    kind = StringField(choices=SUBMISSION_KINDS, required=True)
    state = StringField(choices=SUBMISSION_STATES, required=True)
    source = StringField(required=True)  # "web", "api-key:<prefix>", "api-user", "portal"
    requester_email = StringField(required=True)
    raw = BinaryField(required=True)  # the RFC 822 message (stdlib email package)
    message_id = StringField(required=True)
    ticket_number = IntField()  # reserved for a new ticket, or the ticket a reply belongs to
    status_key = StringField()  # sha256 of the status-link token handed out before the ticket exists
    confirm_key = StringField()  # sha256 of the single-use confirmation token (web form)
    expires_at = DateTimeField()  # an unconfirmed submission is void after this
    client_key = StringField(default="")  # sha256 of the client address (per-client limit)
    fingerprint = StringField(default="")  # sha256 of the request body (Idempotency-Key reuse check)
    created_at = DateTimeField(default=utcnow)
    ready_at = DateTimeField()
    claimed_by = StringField()  # the daemon ingesting it (models/claims.py)
    lease_until = DateTimeField()
    attempts = IntField(default=0)
    last_error = StringField()
    ingested_at = DateTimeField()
    outcome = StringField()

    meta = {
        "collection": "web_submissions",
        "indexes": [
            ("state", "ready_at"),  # the daemon's poll
            "confirm_key",
            ("requester_email", "-created_at"),  # per-address limit
            ("client_key", "-created_at"),  # per-client limit
            {"fields": ["expires_at"], "expireAfterSeconds": 7 * 24 * 3600},  # void ones are swept a week later
        ],
    }


WEB_SOURCES = ("web", "portal")  # what the web form stores (an integration's API tickets do not count)


def count_recent(*, requester_email: str = "", client_key: str = "", hours: float = 1.0) -> int:
    """Tickets from the web form for one address or one client in the last `hours` (an indexed count)."""
    since = utcnow() - dt.timedelta(hours=hours)
    query = WebSubmission.objects(created_at__gte=since, kind="ticket", source__in=list(WEB_SOURCES))
    if requester_email:
        query = query.filter(requester_email=requester_email)
    if client_key:
        query = query.filter(client_key=client_key)
    return query.count()


def find_confirmation(token: str) -> tuple[WebSubmission | None, str]:
    """The submission a confirmation token belongs to, and "ok" / "used" / "expired" / "unknown"."""
    if not token or len(token) > 200:
        return None, "unknown"
    found = WebSubmission.objects(confirm_key=token_hash(token)).first()
    if found is None:
        return None, "unknown"
    if found.state != "unconfirmed":
        return found, "used"
    if found.expires_at is not None and found.expires_at <= utcnow():
        return found, "expired"
    return found, "ok"


def confirm_submission(token: str, reserve_number: Callable[[], int]) -> tuple[WebSubmission | None, str]:
    """Use a confirmation token once: (the submission, "ok"), else (it or None, "used"/"expired"/"unknown").

    `reserve_number` is called only for a valid token; the number, the state change and the token's end are
    one atomic conditional update, so a second click (or a race) finds "used".
    """
    found, state = find_confirmation(token)
    if state != "ok" or found is None:
        return found, state
    now = utcnow()
    updated = WebSubmission._get_collection().find_one_and_update(
        {"_id": found.key, "state": "unconfirmed", "expires_at": {"$gt": now}},
        {"$set": {"state": "ready", "ready_at": now, "ticket_number": reserve_number()}, "$unset": {"expires_at": ""}},
        return_document=ReturnDocument.AFTER,
    )
    if updated is None:  # a concurrent click won (its number is the ticket's; ours stays unused)
        return found, "used"
    return WebSubmission._from_son(updated), "ok"
