"""Support mailboxes besides the one in the settings (issue 12): each with its own address, server, login,
folder, default category or skills and acknowledgement signature. Its credential (password or OAuth2 refresh
token) is stored sealed (mailauth/sealed.py) and never shown; `settings_for` gives the daemon the settings of
one mailbox, so its cursor, lease and OAuth2 grant are its own (they are keyed by its user, host and folder)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from mongoengine import BinaryField, BooleanField, DateTimeField, Document, IntField, ListField, StringField

from config import Settings
from config.oauth import MAIL_AUTH_MODES, SASL_MECHANISMS
from config.settings import IMAP_SECURITY_MODES
from mailauth.sealed import seal, unseal
from models.base import utcnow

SMTP_SECURITY_MODES = ("starttls", "ssl", "none")


@dataclass(frozen=True)
class MailboxSettings(Settings):
    """The settings one support mailbox is read and answered with (`SupportMailbox.settings_for`): the base
    settings with its server and login, plus what its tickets and acknowledgements carry."""

    mailbox_address: str = ""
    default_category: str = ""
    default_skills: tuple[str, ...] = ()
    ack_signature: str = ""


def mailbox_of(settings: Settings) -> MailboxSettings | None:
    """The mailbox `settings` belong to; None for the settings' own mailbox."""
    return settings if isinstance(settings, MailboxSettings) and settings.mailbox_address else None


def cursor_key(user: str, host: str, port: int, folder: str) -> str:
    """The name of a mailbox's cursor, lease and failures: its login, server and folder."""
    return f"{user}@{host}:{port}/{folder}"


class SupportMailbox(Document):
    address = StringField(primary_key=True)  # customers write here; replies to its tickets go out from it
    name = StringField(default="")  # e.g. "Billing", shown to agents
    enabled = BooleanField(default=True)
    imap_host = StringField(required=True)
    imap_port = IntField(default=993, min_value=1, max_value=65535)
    imap_security = StringField(choices=IMAP_SECURITY_MODES, default="ssl")
    imap_user = StringField(default="")  # empty: the address
    imap_folder = StringField(default="INBOX")
    imap_processed_folder = StringField(default="")
    auth = StringField(choices=MAIL_AUTH_MODES, default="password")  # for IMAP and SMTP alike
    sasl_mechanism = StringField(choices=SASL_MECHANISMS, default="xoauth2")
    smtp_host = StringField(default="")  # empty: the settings' MAIL_SERVER
    smtp_port = IntField(default=587, min_value=1, max_value=65535)
    smtp_security = StringField(choices=SMTP_SECURITY_MODES, default="starttls")
    default_category = StringField(default="")
    default_skills = ListField(StringField(), default=list)
    ack_signature = StringField(default="")
    sealed_secret = BinaryField()  # the password or the refresh token, sealed; write-only for admins
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    meta = {"collection": "support_mailboxes"}  # a handful of rows: no index beyond _id

    @property
    def login(self) -> str:
        return self.imap_user or self.address

    @property
    def cursor_name(self) -> str:
        return cursor_key(self.login, self.imap_host, self.imap_port, self.imap_folder)

    def set_secret(self, secret: str, key: str) -> None:
        """Store the password (auth=password) or the OAuth2 refresh token (auth=oauth2), sealed with `key`."""
        self.sealed_secret = seal(key, secret)

    def secret(self, key: str) -> str:
        return unseal(key, self.sealed_secret) if self.sealed_secret else ""

    def settings_for(self, base: Settings, key: str) -> MailboxSettings:
        """`base` with this mailbox's server, login and address: what poll_once and the outbox take."""
        secret, oauth = self.secret(key), self.auth == "oauth2"
        plain = {spec.name: getattr(base, spec.name) for spec in dataclasses.fields(Settings)}
        plain.update(
            imap_host=self.imap_host,
            imap_port=self.imap_port,
            imap_security=self.imap_security,
            imap_user=self.login,
            imap_folder=self.imap_folder,
            imap_processed_folder=self.imap_processed_folder,
            imap_auth=self.auth,
            imap_sasl_mechanism=self.sasl_mechanism,
            imap_password="" if oauth else secret,
            mail_server=self.smtp_host or base.mail_server,
            mail_port=self.smtp_port if self.smtp_host else base.mail_port,
            mail_use_tls=self.smtp_security == "starttls" if self.smtp_host else base.mail_use_tls,
            mail_use_ssl=self.smtp_security == "ssl" if self.smtp_host else base.mail_use_ssl,
            mail_username=self.login if self.smtp_host else base.mail_username,
            mail_password="" if oauth or not self.smtp_host else secret,
            mail_auth=self.auth if self.smtp_host else base.mail_auth,
            mail_default_sender=self.address,
            support_address=self.address,
            oauth_refresh_token=secret if oauth else "",
            oauth_refresh_token_file="",  # the sealed token is this mailbox's; the file is the settings' mailbox
        )
        return MailboxSettings(
            **plain,
            mailbox_address=self.address,
            # within the ticket's limits (64 characters each): a long value must not fail every email's insert
            default_category=(self.default_category or "").strip().lower()[:64],
            default_skills=tuple(dict.fromkeys(s.strip().lower()[:64] for s in self.default_skills or () if s.strip())),
            ack_signature=self.ack_signature or "",
        )


def enabled_mailboxes() -> list[SupportMailbox]:
    """The mailboxes the daemon reads."""
    return list(SupportMailbox.objects(enabled=True).order_by("address"))


def mailbox_by_address(address: str) -> SupportMailbox | None:
    """One mailbox by its address (the `_id`), enabled or not."""
    return SupportMailbox.objects(address=address).first() if address else None


def mailbox_states(settings: Settings) -> list[dict[str, object]]:
    """Each mailbox the daemon reads or could read, as /healthz and the admin panel show it: the settings' own
    (address "") first, then every SupportMailbox; when it last polled, its last error and its OAuth2 grant.
    Three queries on `_id`/unique keys over a handful of rows."""
    from models.mail import MailboxCursor
    from models.oauth import MailGrant

    own = cursor_key(settings.imap_user, settings.imap_host, settings.imap_port, settings.imap_folder)
    rows: list[tuple[str, str, bool, str, str, bool]] = [
        ("", "settings", True, own, settings.imap_user, settings.imap_auth == "oauth2")
    ]
    rows += [
        (m.address, m.name or "", bool(m.enabled), m.cursor_name, m.login, m.auth == "oauth2")
        for m in SupportMailbox.objects.order_by("address")
    ]
    cursors = {c.mailbox: c for c in MailboxCursor.objects(mailbox__in=[r[3] for r in rows])}
    grants = {g.account: g for g in MailGrant.objects(account__in=[r[4] for r in rows if r[5]])}
    now = utcnow()
    states: list[dict[str, object]] = []
    for address, name, enabled, cursor_name, login, oauth in rows:
        cursor, grant = cursors.get(cursor_name), grants.get(login) if oauth else None
        polled = cursor.last_poll_at if cursor is not None else None
        states.append(
            {
                "address": address or settings.support_address,
                "name": name,
                "enabled": enabled,
                "last_poll_at": f"{polled:%Y-%m-%dT%H:%M:%SZ}" if polled else None,
                "last_poll_age_seconds": round((now - polled).total_seconds(), 1) if polled else None,
                "last_error": (cursor.last_error or None) if cursor is not None else None,
                "grant": (grant.state if grant is not None else "missing") if oauth else None,
            }
        )
    return states


def mailbox_healthy(state: dict[str, object]) -> bool:
    """A disabled mailbox is not read, so it is not a problem; an enabled one is when it fails."""
    return not state["enabled"] or (not state["last_error"] and state["grant"] in (None, "ok"))
