"""Load and validate settings from the environment and `.env`.

A bad or missing value raises `SettingsError` whose message is one line naming the variable.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from dotenv import dotenv_values

from config.oauth import MAIL_AUTH_MODES, OAUTH_PROVIDERS, SASL_MECHANISMS, endpoint_problem, provider_preset

PRIORITIES = ("low", "medium", "high", "urgent")
IMAP_SECURITY_MODES = ("ssl", "starttls", "none")
TRIAGE_PROVIDERS = ("auto", "gemini", "local")


class SettingsError(ValueError):
    """A configuration value is missing or invalid; str() is one line naming the variable."""


def _as_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise SettingsError(f"{name}: expected true or false, got {raw!r}")


def _as_int(name: str, raw: str, minimum: int = 0) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(f"{name}: expected a whole number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name}: must be at least {minimum}, got {value}")
    return value


def _as_float(name: str, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise SettingsError(f"{name}: expected a number, got {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{name}: must be positive, got {value}")
    return value


def _as_choice(name: str, raw: str, choices: tuple[str, ...]) -> str:
    value = raw.strip().lower()
    if value not in choices:
        raise SettingsError(f"{name}: expected one of {', '.join(choices)}, got {raw!r}")
    return value


def _as_sla_hours(name: str, raw: str) -> dict[str, float]:
    """Parse `low=72,medium=24,high=8,urgent=2` into hours per priority."""
    hours: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in PRIORITIES:
            raise SettingsError(f"{name}: expected priority=hours pairs like 'high=8', got {part!r}")
        hours[key.strip()] = _as_float(name, value)
    missing = [p for p in PRIORITIES if p not in hours]
    if missing:
        raise SettingsError(f"{name}: missing hours for {', '.join(missing)}")
    return hours


@dataclass(frozen=True)
class Settings:
    """Everything configurable, typed. Field names are the lower-case environment variable names."""

    secret_key: str
    jwt_secret_key: str
    mongo_uri: str = "mongodb://127.0.0.1:27018/helpdesk"
    imap_host: str = "127.0.0.1"
    imap_port: int = 10143
    imap_user: str = "support@example.test"
    imap_password: str = ""
    imap_security: str = "starttls"
    imap_folder: str = "INBOX"
    imap_processed_folder: str = ""
    imap_batch_size: int = 200
    imap_verify_tls: bool = True
    mail_server: str = "127.0.0.1"
    mail_port: int = 10025
    mail_use_tls: bool = False
    mail_use_ssl: bool = False
    mail_username: str = ""
    mail_password: str = ""
    mail_default_sender: str = "support@example.test"
    # OAuth2 (issue 12): IMAP and SMTP log in with an access token refreshed from one grant of the mailbox
    imap_auth: str = "password"  # or oauth2 (XOAUTH2 or OAUTHBEARER, IMAP_SASL_MECHANISM)
    imap_sasl_mechanism: str = "xoauth2"
    mail_auth: str = "password"  # or oauth2 (SMTP AUTH XOAUTH2 as MAIL_USERNAME, else IMAP_USER)
    oauth_provider: str = ""  # google or microsoft fill in the URLs and scope below when they are empty
    oauth_tenant: str = "organizations"  # Microsoft: a tenant id or domain, or organizations
    oauth_token_url: str = ""
    oauth_authorize_url: str = ""  # loopback redirect flow (`flask mail authorize`)
    oauth_device_url: str = ""  # device-code flow (RFC 8628)
    oauth_scope: str = ""
    oauth_client_id: str = ""
    oauth_client_secret: str = ""
    oauth_refresh_token: str = ""  # or, better, a file the authorize command writes:
    oauth_refresh_token_file: str = ""  # outside the repository, e.g. /etc/helpdesk/oauth-refresh-token
    oauth_refresh_margin_seconds: int = 300  # refresh an access token this long before it expires
    mailbox_secret_key: str = ""  # Fernet key sealing the credentials of mailboxes kept in the database
    support_address: str = "support@example.test"
    app_url: str = "http://127.0.0.1:5000"
    gemini_api_key: str = ""
    gemini_model: str = "gemini-2.5-flash"
    gemini_base_url: str = ""
    gemini_api_version: str = "v1beta"
    gemini_requests_per_minute: int = 60
    gemini_concurrency: int = 4
    gemini_timeout_seconds: float = 30.0
    gemini_max_retries: int = 3
    triage_provider: str = "auto"
    triage_max_attempts: int = 5
    triage_review_threshold: float = 0.45
    triage_batch_size: int = 100  # tickets claimed and triaged together
    triage_offline_backlog: int = 200  # more waiting than this: the offline model instead of Gemini (0: never)
    poll_interval_seconds: int = 30
    imap_idle_seconds: float = 0.25  # leave IDLE this often to re-check the mailbox (beats Dovecot's 0.5 s push)
    mailbox_lease_seconds: int = 60
    outbox_max_attempts: int = 6
    outbox_backoff_seconds: float = 5.0  # first retry delay; doubles per attempt, capped at an hour
    outbox_interval_seconds: float = 1.0  # how often the daemon sends what the web queued
    ack_limit_per_hour: int = 5
    ack_limit_total_per_hour: int = 200  # acknowledgements to everyone together (backscatter cap)
    authserv_id: str = ""  # our receiving server's Authentication-Results id; its dmarc/spf=fail stops the ack
    status_link_days: int = 30
    attachment_max_bytes: int = 10 * 1024 * 1024
    sla_hours: dict[str, float] = field(
        default_factory=lambda: {"low": 72.0, "medium": 24.0, "high": 8.0, "urgent": 2.0}
    )
    model_dir: str = ".cache/triage-model"
    jwt_access_minutes: int = 15
    jwt_refresh_hours: int = 24
    login_rate_limit: str = "10 per minute"  # per (account, client address), and per client address
    login_account_delay_max_seconds: float = 3.0  # the per-account delay after failures grows to at most this
    session_max_hours: int = 12  # absolute session lifetime from sign-in; renewals cannot extend it
    ratelimit_storage_uri: str = "memory://"
    proxy_fix_x_for: int = 0  # reverse proxies in front of the panel whose X-Forwarded-For is trusted
    portal_confirm_minutes: int = 60  # a web-form ticket's confirmation link lives this long, single-use
    portal_sign_in_minutes: int = 15  # an emailed portal sign-in link lives this long, single-use
    portal_submissions_per_address_hour: int = 5  # web-form tickets (and sign-in links) per address per hour
    portal_submissions_per_client_hour: int = 20  # web-form tickets (and sign-in links) per client address per hour
    portal_reopen_days: int = 14  # a customer may reopen a resolved or closed ticket for this long
    web_intake_interval_seconds: float = 0.5  # how often the daemon ingests what the web and API submitted
    log_level: str = "INFO"

    def flask_config(self) -> dict[str, Any]:
        """The subset Flask and its extensions read from `app.config`."""
        return {
            "SECRET_KEY": self.secret_key,
            "JWT_SECRET_KEY": self.jwt_secret_key,
            "MAIL_SERVER": self.mail_server,
            "MAIL_PORT": self.mail_port,
            "MAIL_USE_TLS": self.mail_use_tls,
            "MAIL_USE_SSL": self.mail_use_ssl,
            "MAIL_USERNAME": self.mail_username or None,
            # with MAIL_AUTH=oauth2 Flask-Mail must not log in itself: daemon/oauth.py does, with a token
            "MAIL_PASSWORD": (self.mail_password or None) if self.mail_auth == "password" else None,
            "MAIL_DEFAULT_SENDER": self.mail_default_sender,
            "MAIL_SUPPRESS_SEND": False,
        }

    @property
    def offline_triage(self) -> bool:
        """Triage uses the offline model only (TRIAGE_PROVIDER=local, or auto without a Gemini key)."""
        return self.triage_provider == "local" or not self.gemini_api_key


def _as_rate_limit(name: str, raw: str) -> str:
    """A Flask-Limiter rate string such as `10 per minute` or `5/minute;100/day`."""
    from limits import parse_many

    try:
        parse_many(raw.strip())
    except ValueError:
        raise SettingsError(f"{name}: expected a rate like '10 per minute', got {raw!r}") from None
    return raw.strip()


def _as_fernet_key(name: str, raw: str) -> str:
    """A Fernet key (32 bytes, url-safe base64), or empty."""
    value = raw.strip()
    try:
        if value and len(base64.urlsafe_b64decode(value.encode())) != 32:
            raise ValueError
    except (ValueError, binascii.Error):
        raise SettingsError(
            f"{name}: expected a key from python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'"
        ) from None
    return value


_CONVERTERS: dict[str, Any] = {
    "imap_security": lambda n, r: _as_choice(n, r, IMAP_SECURITY_MODES),
    "triage_provider": lambda n, r: _as_choice(n, r, TRIAGE_PROVIDERS),
    "imap_auth": lambda n, r: _as_choice(n, r, MAIL_AUTH_MODES),
    "mail_auth": lambda n, r: _as_choice(n, r, MAIL_AUTH_MODES),
    "imap_sasl_mechanism": lambda n, r: _as_choice(n, r, SASL_MECHANISMS),
    "oauth_provider": lambda n, r: _as_choice(n, r, OAUTH_PROVIDERS),
    "mailbox_secret_key": lambda n, r: _as_fernet_key(n, r),
    "log_level": lambda n, r: _as_choice(n, r, ("debug", "info", "warning", "error")).upper(),
    "sla_hours": _as_sla_hours,
    "login_rate_limit": lambda n, r: _as_rate_limit(n, r),
}
_REQUIRED = ("secret_key", "jwt_secret_key")


def load_settings(
    environ: Mapping[str, str] | None = None,
    env_file: str | None = ".env",
    **overrides: Any,
) -> Settings:
    """Build settings from `.env` (if present) overlaid with `environ` (default `os.environ`).

    `overrides` (already typed, by field name) win over both; tests use them.
    """
    source: dict[str, str] = {}
    if env_file and os.path.exists(env_file):
        source.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    source.update(os.environ if environ is None else environ)

    values: dict[str, Any] = {}
    for spec in fields(Settings):
        name = spec.name.upper()
        if spec.name in overrides:
            values[spec.name] = overrides[spec.name]
            continue
        raw = source.get(name)
        if raw is None or (raw.strip() == "" and spec.name in _REQUIRED):
            if spec.name in _REQUIRED:
                raise SettingsError(f"{name}: is required (set it in the environment or .env)")
            continue
        if spec.name in _CONVERTERS:
            values[spec.name] = _CONVERTERS[spec.name](name, raw)
        elif spec.type == "int":
            values[spec.name] = _as_int(name, raw)
        elif spec.type == "float":
            values[spec.name] = _as_float(name, raw)
        elif spec.type == "bool":
            values[spec.name] = _as_bool(name, raw)
        else:
            values[spec.name] = raw.strip()
    settings = _with_provider_preset(Settings(**values))
    _check_consistency(settings)
    return settings


def _with_provider_preset(settings: Settings) -> Settings:
    """Fill the OAuth2 URLs and scope left empty from OAUTH_PROVIDER's documented values."""
    preset = provider_preset(settings.oauth_provider, settings.oauth_tenant)
    if preset is None:
        return settings
    names = ("token_url", "authorize_url", "device_url", "scope")
    missing = {f"oauth_{n}": getattr(preset, n) for n in names if not getattr(settings, f"oauth_{n}")}
    return replace(settings, **missing) if missing else settings


def to_environ(settings: Settings) -> dict[str, str]:
    """The environment variables that make `load_settings` rebuild `settings` (for child processes)."""
    environ: dict[str, str] = {}
    for spec in fields(Settings):
        value = getattr(settings, spec.name)
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, dict):
            text = ",".join(f"{key}={hours:g}" for key, hours in value.items())
        else:
            text = str(value)
        environ[spec.name.upper()] = text
    return environ


MIN_SECRET_BYTES = 32


def _check_consistency(settings: Settings) -> None:
    for name in ("secret_key", "jwt_secret_key"):
        if len(getattr(settings, name).encode("utf-8")) < MIN_SECRET_BYTES:
            raise SettingsError(
                f"{name.upper()}: must be at least {MIN_SECRET_BYTES} bytes (e.g. python -c "
                "'import secrets; print(secrets.token_urlsafe(32))')"
            )
    if settings.mail_use_tls and settings.mail_use_ssl:
        raise SettingsError("MAIL_USE_TLS: cannot be true together with MAIL_USE_SSL")
    if not settings.mongo_uri.startswith(("mongodb://", "mongodb+srv://")):
        raise SettingsError(f"MONGO_URI: expected a mongodb:// or mongodb+srv:// URI, got {settings.mongo_uri!r}")
    if settings.triage_provider == "gemini" and not settings.gemini_api_key:
        raise SettingsError("GEMINI_API_KEY: is required when TRIAGE_PROVIDER=gemini")
    if settings.triage_batch_size < 1:
        raise SettingsError(f"TRIAGE_BATCH_SIZE: must be at least 1, got {settings.triage_batch_size}")
    if settings.outbox_interval_seconds <= 0:
        raise SettingsError(f"OUTBOX_INTERVAL_SECONDS: must be above 0, got {settings.outbox_interval_seconds}")
    if "@" not in settings.support_address:
        raise SettingsError(f"SUPPORT_ADDRESS: expected an email address, got {settings.support_address!r}")
    if not settings.app_url.startswith(("http://", "https://")):
        raise SettingsError(f"APP_URL: expected an http(s) URL, got {settings.app_url!r}")
    _check_oauth(settings)


def _check_oauth(settings: Settings) -> None:
    for name in ("oauth_token_url", "oauth_authorize_url", "oauth_device_url"):
        url = getattr(settings, name)
        if url and (problem := endpoint_problem(name.upper(), url)):
            raise SettingsError(problem)
    if "oauth2" not in (settings.imap_auth, settings.mail_auth):
        return
    mode = "IMAP_AUTH" if settings.imap_auth == "oauth2" else "MAIL_AUTH"
    for name in ("oauth_token_url", "oauth_client_id"):
        if not getattr(settings, name):
            raise SettingsError(f"{name.upper()}: is required when {mode}=oauth2 (or set OAUTH_PROVIDER)")
    if settings.oauth_refresh_token_file and not os.path.isabs(settings.oauth_refresh_token_file):
        raise SettingsError(
            f"OAUTH_REFRESH_TOKEN_FILE: expected an absolute path, got {settings.oauth_refresh_token_file!r}"
        )
