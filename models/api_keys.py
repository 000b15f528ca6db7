"""API keys for integrations (monitoring, a shop, a chat widget): created, scoped and revoked by admins.

A key is `hdk_<prefix>_<secret>`: the prefix (8 characters) identifies it in lists and logs, the secret has
256 random bits. Only the SHA-256 of the whole key is stored; the key itself is shown once, on creation.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from mongoengine import DateTimeField, Document, ListField, StringField

from models.base import utcnow

KEY_PREFIX = "hdk_"
SCOPES = ("tickets:create",)
LAST_USED_PRECISION = dt.timedelta(minutes=1)


def api_key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()


class ApiKey(Document):
    key_hash = StringField(primary_key=True)
    prefix = StringField(required=True, unique=True, max_length=16)
    name = StringField(required=True, max_length=200)
    scopes = ListField(StringField(choices=SCOPES))
    created_by = StringField(default="")
    created_at = DateTimeField(default=utcnow)
    revoked_at = DateTimeField()
    revoked_by = StringField()
    last_used_at = DateTimeField()

    meta = {"collection": "api_keys", "indexes": ["-created_at"]}

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"


def new_api_key() -> tuple[str, str, str]:
    """(the full key to show once, its prefix, its stored hash)."""
    prefix = secrets.token_hex(4)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    return key, prefix, api_key_hash(key)


def create_api_key(name: str, scopes: list[str], created_by: str) -> tuple[ApiKey, str]:
    """Store a new key; (the record, the full key, which is never stored and cannot be shown again)."""
    key, prefix, digest = new_api_key()
    record = ApiKey(key_hash=digest, prefix=prefix, name=name, scopes=scopes, created_by=created_by)
    record.save(force_insert=True)
    return record, key


def find_api_key(key: str, scope: str) -> tuple[ApiKey | None, str]:
    """(the key, "ok") when it exists, is not revoked and has `scope`; else (it or None, the reason)."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None, "unknown"
    record = ApiKey.objects(key_hash=api_key_hash(key)).first()
    if record is None:
        return None, "unknown"
    if record.revoked_at is not None:
        return record, "revoked"
    if scope not in (record.scopes or []):
        return record, "scope"
    now = utcnow()
    if record.last_used_at is None or now - record.last_used_at > LAST_USED_PRECISION:  # a write a minute at most
        ApiKey.objects(key_hash=record.key_hash).update_one(set__last_used_at=now)
    return record, "ok"


def revoke_api_key(record: ApiKey, actor: str) -> bool:
    """Revoke now (conditional: a second revoke changes nothing); True when this call revoked it."""
    return bool(
        ApiKey.objects(key_hash=record.key_hash, revoked_at=None).update_one(
            set__revoked_at=utcnow(), set__revoked_by=actor[:320]
        )
    )
