"""Signed, expiring links that let a requester see their own ticket without a password."""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

STATUS_LINK_SALT = "ticket-status-link"
STATUS_LINK_MAX_AGE = 90 * 24 * 3600  # seconds


def make_status_token(secret_key: str, ticket_number: int, requester_email: str) -> str:
    serializer = URLSafeTimedSerializer(secret_key, salt=STATUS_LINK_SALT)
    return serializer.dumps({"t": ticket_number, "e": requester_email.lower()})


def read_status_token(secret_key: str, token: str, max_age: int = STATUS_LINK_MAX_AGE) -> tuple[int, str] | None:
    """(ticket number, requester email) for a valid token; None when forged, malformed or expired."""
    serializer = URLSafeTimedSerializer(secret_key, salt=STATUS_LINK_SALT)
    try:
        data = serializer.loads(token, max_age=max_age)
    except (BadSignature, SignatureExpired):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("t"), int) or not isinstance(data.get("e"), str):
        return None
    return data["t"], data["e"]


def status_url(app_url: str, secret_key: str, ticket_number: int, requester_email: str) -> str:
    return f"{app_url.rstrip('/')}/status/{make_status_token(secret_key, ticket_number, requester_email)}"
