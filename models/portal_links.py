"""Sign-in links for the customer portal (customers have no passwords).

A link is emailed to an address on request; it is opaque (256 random bits, only the SHA-256 stored),
single-use and short-lived, and every unused link of an address can be revoked at once.
"""

from __future__ import annotations

import datetime as dt

from mongoengine import DateTimeField, Document, StringField
from pymongo import ReturnDocument

from models.base import utcnow
from models.submissions import new_token, token_hash


class PortalSignInLink(Document):
    key = StringField(primary_key=True)  # sha256 of the token
    email = StringField(required=True)
    client_key = StringField(default="")
    created_at = DateTimeField(default=utcnow)
    expires_at = DateTimeField(required=True)
    used_at = DateTimeField()
    revoked_at = DateTimeField()

    meta = {
        "collection": "portal_sign_in_links",
        "indexes": [
            ("email", "-created_at"),
            ("client_key", "-created_at"),
            {"fields": ["expires_at"], "expireAfterSeconds": 24 * 3600},
        ],
    }


def create_sign_in_link(email: str, minutes: int, client_key: str = "") -> str:
    """A new single-use sign-in token for `email`, valid `minutes`."""
    token, key = new_token()
    now = utcnow()
    PortalSignInLink(
        key=key, email=email, client_key=client_key, created_at=now, expires_at=now + dt.timedelta(minutes=minutes)
    ).save(force_insert=True)
    return token


def peek_sign_in_link(token: str) -> tuple[PortalSignInLink | None, str]:
    """The link and "ok" / "used" / "expired" / "revoked" / "unknown", without using it up."""
    if not token or len(token) > 200:
        return None, "unknown"
    link = PortalSignInLink.objects(key=token_hash(token)).first()
    if link is None:
        return None, "unknown"
    if link.revoked_at is not None:
        return link, "revoked"
    if link.used_at is not None:
        return link, "used"
    if link.expires_at <= utcnow():
        return link, "expired"
    return link, "ok"


def use_sign_in_link(token: str) -> tuple[PortalSignInLink | None, str]:
    """Use a link once: one atomic conditional update, so a second use (or a race) finds "used"."""
    link, state = peek_sign_in_link(token)
    if state != "ok" or link is None:
        return link, state
    now = utcnow()
    updated = PortalSignInLink._get_collection().find_one_and_update(
        {"_id": link.key, "used_at": None, "revoked_at": None, "expires_at": {"$gt": now}},
        {"$set": {"used_at": now}},
        return_document=ReturnDocument.AFTER,
    )
    if updated is None:
        return link, "used"
    return PortalSignInLink._from_son(updated), "ok"


def revoke_sign_in_links(email: str) -> int:
    """End every unused link of an address now; how many there were."""
    return PortalSignInLink.objects(email=email, used_at=None, revoked_at=None).update(set__revoked_at=utcnow())


def count_recent_links(*, email: str = "", client_key: str = "", hours: float = 1.0) -> int:
    since = utcnow() - dt.timedelta(hours=hours)
    query = PortalSignInLink.objects(created_at__gte=since)
    if email:
        query = query.filter(email=email)
    if client_key:
        query = query.filter(client_key=client_key)
    return query.count()
