"""Ending a user's sessions: every token carries the user's token version, and a change of password,
role or active flag bumps it, so every access token, refresh token and cookie issued before stops
working at once (webadmin/security.py compares the two on every request)."""

from __future__ import annotations

from typing import Any

CREDENTIAL_FIELDS = frozenset({"password_hash", "role", "active"})


def bump_token_version_on_credential_change(sender: Any, document: Any, **_kwargs: Any) -> None:
    """mongoengine `pre_save` receiver for User: a saved change of password, role or activity ends sessions."""
    if document.pk is None:  # a new user has no sessions yet
        return
    if CREDENTIAL_FIELDS & set(document._get_changed_fields()):
        document.token_version = (document.token_version or 0) + 1
