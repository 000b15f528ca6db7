"""Mailbox credentials kept in the database only encrypted (Fernet: AES-128-CBC + HMAC-SHA256), with the key
from MAILBOX_SECRET_KEY, so the database alone never yields a password or a refresh token."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken


class SealError(ValueError):
    """No key, or a stored secret that this key did not seal (the key was changed)."""


def seal(key: str, secret: str) -> bytes:
    if not key:
        raise SealError("MAILBOX_SECRET_KEY is not set: it is needed to store mailbox credentials")
    return Fernet(key.encode()).encrypt(secret.encode("utf-8"))


def unseal(key: str, sealed: bytes) -> str:
    if not key:
        raise SealError("MAILBOX_SECRET_KEY is not set: it is needed to read mailbox credentials")
    try:
        return Fernet(key.encode()).decrypt(bytes(sealed)).decode("utf-8")
    except InvalidToken:
        raise SealError("a mailbox credential does not open with MAILBOX_SECRET_KEY (was the key changed?)") from None


def new_key() -> str:
    """A key for MAILBOX_SECRET_KEY."""
    return Fernet.generate_key().decode()
