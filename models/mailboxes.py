"""Support mailboxes besides the one in the settings (issue 12): each with its own address, server, login,
folder, default category or skills and acknowledgement signature. Its credential (password or OAuth2 refresh
token) is stored sealed (mailauth/sealed.py) and never shown; `settings_for` gives the daemon the settings of
one mailbox, so its cursor, lease and OAuth2 grant are its own (they are keyed by its user, host and folder)."""

from __future__ import annotations

import dataclasses

from mongoengine import BinaryField, BooleanField, DateTimeField, Document, IntField, ListField, StringField

from config import Settings
from config.oauth import MAIL_AUTH_MODES, SASL_MECHANISMS
from config.settings import IMAP_SECURITY_MODES
from mailauth.sealed import seal, unseal
from models.base import utcnow

SMTP_SECURITY_MODES = ("starttls", "ssl", "none")


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

    def set_secret(self, secret: str, key: str) -> None:
        """Store the password (auth=password) or the OAuth2 refresh token (auth=oauth2), sealed with `key`."""
        self.sealed_secret = seal(key, secret)

    def secret(self, key: str) -> str:
        return unseal(key, self.sealed_secret) if self.sealed_secret else ""

    def settings_for(self, base: Settings, key: str) -> Settings:
        """`base` with this mailbox's server, login and address: what poll_once and the outbox take."""
        secret, oauth = self.secret(key), self.auth == "oauth2"
        return dataclasses.replace(
            base,
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


def enabled_mailboxes() -> list[SupportMailbox]:
    """The mailboxes the daemon reads."""
    return list(SupportMailbox.objects(enabled=True).order_by("address"))
