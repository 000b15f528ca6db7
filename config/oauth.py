"""OAuth2 for the mailbox: provider presets and the checks on the OAUTH_* settings (pure, no I/O)."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

MAIL_AUTH_MODES = ("password", "oauth2")
OAUTH_PROVIDERS = ("", "google", "microsoft")
SASL_MECHANISMS = ("xoauth2", "oauthbearer")


@dataclass(frozen=True)
class ProviderPreset:
    """The endpoints and scopes a provider documents for IMAP and SMTP with OAuth2."""

    token_url: str
    authorize_url: str
    device_url: str
    scope: str


def provider_preset(provider: str, tenant: str = "organizations") -> ProviderPreset | None:
    """Google's and Microsoft's documented endpoints; None for a custom provider (set the URLs yourself)."""
    if provider == "google":
        return ProviderPreset(
            token_url="https://oauth2.googleapis.com/token",
            authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
            device_url="https://oauth2.googleapis.com/device/code",  # Google refuses the mail scope on it
            scope="https://mail.google.com/",
        )
    if provider == "microsoft":
        base = f"https://login.microsoftonline.com/{urllib.parse.quote(tenant or 'organizations', safe='')}/oauth2/v2.0"
        return ProviderPreset(
            token_url=f"{base}/token",
            authorize_url=f"{base}/authorize",
            device_url=f"{base}/devicecode",
            scope=" ".join(f"https://outlook.office.com/{s}" for s in ("IMAP.AccessAsUser.All", "SMTP.Send"))
            + " offline_access",
        )
    return None


def endpoint_problem(name: str, url: str) -> str | None:
    """Why `url` cannot carry tokens, or None: https only, except on a loopback host (RFC 8252 7.3)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1"):
        return None
    return f"{name}: expected an https:// URL (http:// only on 127.0.0.1), got {url!r}"
