"""Status links: opaque, short-lived, revocable links that show a requester their own ticket.

The token is 256 random bits and says nothing by itself (no address, no ticket number); only its
SHA-256 is stored, so a copy of the database cannot be turned into working links.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from mongoengine import DateTimeField, Document, IntField, ObjectIdField, StringField

from models.base import utcnow

TOKEN_BYTES = 32


class StatusLink(Document):
    key = StringField(primary_key=True)  # sha256 of the token
    ticket_id = ObjectIdField(required=True)
    ticket_number = IntField(required=True)
    created_at = DateTimeField(default=utcnow)
    expires_at = DateTimeField(required=True)
    revoked_at = DateTimeField()
    revoked_by = StringField()

    meta = {"collection": "status_links", "indexes": ["ticket_number"]}


def token_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def new_status_link(ticket_id: object, ticket_number: int, lifetime_days: int) -> tuple[str, StatusLink]:
    """A fresh token and its unsaved link, valid `lifetime_days` unless revoked sooner."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = utcnow()
    link = StatusLink(
        key=token_key(token),
        ticket_id=ticket_id,
        ticket_number=ticket_number,
        created_at=now,
        expires_at=now + dt.timedelta(days=lifetime_days),
    )
    return token, link


def create_status_token(ticket_id: object, ticket_number: int, lifetime_days: int) -> str:
    """A new link token for a ticket, valid `lifetime_days` unless revoked sooner."""
    token, link = new_status_link(ticket_id, ticket_number, lifetime_days)
    link.save(force_insert=True)
    return token


def create_status_tokens(tickets: list[tuple[object, int]], lifetime_days: int) -> list[str]:
    """`create_status_token` for many (ticket id, number) pairs with one bulk insert; tokens in the same order."""
    if not tickets:
        return []
    pairs = [new_status_link(ticket_id, number, lifetime_days) for ticket_id, number in tickets]
    for _, link in pairs:
        link.validate()
    StatusLink._get_collection().insert_many([link.to_mongo().to_dict() for _, link in pairs], ordered=False)
    return [token for token, _ in pairs]


def status_url(app_url: str, token: str) -> str:
    return f"{app_url.rstrip('/')}/status/{token}"


def find_status_link(token: str) -> tuple[StatusLink | None, str]:
    """(the link, "ok") for a valid token; (link or None, "expired" / "revoked" / "unknown") otherwise."""
    if not token or len(token) > 200:
        return None, "unknown"
    link = StatusLink.objects(key=token_key(token)).first()
    if link is None:
        return None, "unknown"
    if link.revoked_at is not None:
        return link, "revoked"
    if link.expires_at <= utcnow():
        return link, "expired"
    return link, "ok"


def revoke_status_links(ticket_number: int, actor: str) -> int:
    """End every live link of a ticket now; how many there were."""
    return StatusLink.objects(ticket_number=ticket_number, revoked_at=None).update(
        set__revoked_at=utcnow(), set__revoked_by=actor[:320]
    )


# Paths whose last segment is a credential: status links, and the portal's confirmation and sign-in links.
TOKEN_PATHS = ("/status/", "/portal/confirm/", "/portal/sign-in/", "/portal/from-status/")


def redact_status_path(path: str) -> str:
    """`/status/<token>` (and the portal's token paths) with all but the token's first 6 characters hidden
    (for access logs)."""
    for prefix in TOKEN_PATHS:
        path = _redact_after(path, prefix)
    return path


def _redact_after(path: str, prefix: str) -> str:
    index = path.find(prefix)
    if index < 0:
        return path
    start = index + len(prefix)
    end = len(path)
    for separator in ("?", "#", " "):
        found = path.find(separator, start)
        if found >= 0:
            end = min(end, found)
    token = path[start:end]
    return path[:start] + (token[:6] + "..." if token else "") + path[end:]
