"""OAuth2 logins for IMAP (XOAUTH2 or OAUTHBEARER) and SMTP (AUTH XOAUTH2), and the access tokens they use.

One `MailTokens` per grant and process, shared by the poller and the outbox threads: it refreshes the access
token OAUTH_REFRESH_MARGIN_SECONDS before it expires, and once more when a server rejects it. The grant's
state (ok, missing, expired, revoked, rejected, error) goes to `mail_grants` for /healthz and the admin panel.
No token is ever logged or stored in the database.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import threading
import time
from typing import TYPE_CHECKING

from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from config import Settings
from mailauth.sealed import seal
from mailauth.token_file import read_refresh_token, write_refresh_token
from models.mailboxes import SupportMailbox, mailbox_of
from models.oauth import AUTHORIZE_COMMAND, record_grant

if TYPE_CHECKING:
    from mailauth.endpoint import GrantError, TokenGrant

logger = logging.getLogger(__name__)
FAILED_GRANT_PAUSE_SECONDS = 300.0  # a refused refresh token is not offered again for this long


class MailAuthError(Exception):
    """The mailbox cannot log in until an admin acts (the grant is missing, revoked or refused)."""


class MailTokens:
    """The access token of one grant: cached, refreshed ahead of expiry, refreshed again on demand."""

    def __init__(self, settings: Settings) -> None:
        # imported here: requests and oauthlib (a quarter of a second) only for mailboxes that sign in with OAuth2
        from mailauth.endpoint import OAuthClient

        self.settings = settings
        self.account = settings.imap_user
        self.client = OAuthClient(
            settings.oauth_token_url, settings.oauth_client_id, settings.oauth_client_secret, settings.oauth_scope
        )
        self._lock = threading.Lock()
        self._grant: TokenGrant | None = None
        self._rotated = ""  # the refresh token the provider rotated to, newest first
        self._file_seen = ""  # the file's content when we last read or wrote it
        self._refused: tuple[str, float, GrantError] | None = None

    def access_token(self, force: bool = False) -> str:
        """A token valid for at least the margin; `force` after a server rejected the current one."""
        with self._lock:
            margin = self.settings.oauth_refresh_margin_seconds
            if force or self._grant is None or self._grant.expires_at - margin <= time.time():
                self._grant = self._refresh()
            return self._grant.access_token

    def rejected(self, where: str) -> None:
        """A server refused a token we had just refreshed: the grant works, but not for mail."""
        self._grant = None
        self._note("rejected", f"{where} refused the access token of {self.account}")

    def _note(self, state: str, error: str = "", expires_at: dt.datetime | None = None) -> None:
        """Record the grant's state; a database that is away must not fail a login that works."""
        try:
            record_grant(self.account, state, error, expires_at)
        except Exception:  # the poll or send goes on; the next refresh records it again
            logger.warning("could not record the OAuth2 grant state of %s", self.account, exc_info=True)

    def _refresh_token(self) -> str:
        """The newest refresh token: a new one in the file (`mail authorize` ran) wins over one we rotated."""
        path = self.settings.oauth_refresh_token_file
        stored = read_refresh_token(path) if path else ""
        if stored and stored != self._file_seen:
            self._file_seen, self._rotated = stored, ""
        return self._rotated or stored or self.settings.oauth_refresh_token

    def _refresh(self) -> TokenGrant:
        from mailauth.endpoint import EndpointUnavailable, GrantError, refresh

        refresh_token = self._refresh_token()
        if not refresh_token:
            self._note("missing", "no refresh token")
            raise MailAuthError(f"no OAuth2 refresh token for {self.account}: run `{AUTHORIZE_COMMAND}`")
        if self._refused and self._refused[0] == refresh_token and time.time() < self._refused[1]:
            raise MailAuthError(f"OAuth2 grant of {self.account} refused: {self._refused[2]}")  # ask again later
        try:
            grant = refresh(self.client, refresh_token)
        except GrantError as exc:
            self._refused = (refresh_token, time.time() + FAILED_GRANT_PAUSE_SECONDS, exc)
            self._note(exc.state, str(exc))
            logger.error("OAuth2 refresh for %s refused (%s): %s", self.account, exc.state, exc)
            raise MailAuthError(f"OAuth2 grant of {self.account} refused: {exc}") from None
        except EndpointUnavailable as exc:  # transient: the poll or send is retried; the grant is unchanged
            raise MailAuthError(f"OAuth2 token endpoint unavailable: {exc}") from None
        self._refused = None
        if grant.refresh_token and grant.refresh_token != refresh_token:
            self._keep_rotated(grant.refresh_token)
        expires = dt.datetime.fromtimestamp(grant.expires_at, dt.UTC).replace(tzinfo=None, microsecond=0)
        self._note("ok", expires_at=expires)
        logger.info("refreshed the OAuth2 access token of %s (valid until %s UTC)", self.account, expires)
        return grant

    def _keep_rotated(self, refresh_token: str) -> None:
        """Providers that rotate refresh tokens (Microsoft) expect the new one next time: keep it in memory and,
        when the grant lives in a file, in the file (a restart then still has it)."""
        self._rotated = refresh_token
        path = self.settings.oauth_refresh_token_file
        if not path:
            self._reseal(refresh_token)
            return
        try:
            write_refresh_token(path, refresh_token)
            self._file_seen = refresh_token
        except OSError as exc:
            logger.error("could not store the rotated refresh token of %s in %s: %s", self.account, path, exc)

    def _reseal(self, refresh_token: str) -> None:
        """A mailbox kept in the database: seal the new refresh token into its document (a restart then has it).
        Its `updated_at` stays: this is no admin's edit, and its loop goes on with the token in memory."""
        mailbox = mailbox_of(self.settings)
        if mailbox is None or not self.settings.mailbox_secret_key:
            return
        try:
            SupportMailbox.objects(address=mailbox.mailbox_address).update_one(
                set__sealed_secret=seal(self.settings.mailbox_secret_key, refresh_token)
            )
        except Exception:  # the token is kept in memory meanwhile; logged without it
            logger.exception("could not store the rotated refresh token of %s", self.account)


_tokens: dict[tuple[str, ...], MailTokens] = {}
_tokens_lock = threading.Lock()


def tokens_for(settings: Settings) -> MailTokens:
    """The process's one `MailTokens` for the grant `settings` describe."""
    key = (
        settings.oauth_token_url,
        settings.oauth_client_id,
        settings.oauth_client_secret,
        settings.oauth_scope,
        settings.imap_user,
        settings.oauth_refresh_token,
        settings.oauth_refresh_token_file,
    )
    with _tokens_lock:
        if key not in _tokens:
            _tokens[key] = MailTokens(settings)
        return _tokens[key]


def forget_tokens() -> None:
    """Drop every cached access token (tests; a re-authorized grant is picked up without it)."""
    with _tokens_lock:
        _tokens.clear()


def imap_login(client: IMAPClient, settings: Settings) -> None:
    """Log in per IMAP_AUTH: a password, or a bearer token (refreshed and tried once more if refused)."""
    if settings.imap_auth != "oauth2":
        client.login(settings.imap_user, settings.imap_password)
        return
    tokens = tokens_for(settings)
    for attempt in (1, 2):
        token = tokens.access_token(force=attempt == 2)
        try:
            if settings.imap_sasl_mechanism == "oauthbearer":
                client.oauthbearer_login(settings.imap_user, token)
            else:
                client.oauth2_login(settings.imap_user, token)
            return
        except LoginError:
            if attempt == 2:
                tokens.rejected("IMAP")
                raise
            logger.info("IMAP refused the access token of %s: refreshing it", settings.imap_user)


def xoauth2_response(user: str, token: str) -> str:
    """The XOAUTH2 initial client response (before base64), as Google and Microsoft document it."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def smtp_login(smtp: smtplib.SMTP, settings: Settings) -> None:
    """With MAIL_AUTH=oauth2, AUTH XOAUTH2 (refreshed and tried once more if refused); a no-op for passwords,
    which Flask-Mail sends itself."""
    if settings.mail_auth != "oauth2":
        return
    user = settings.mail_username or settings.imap_user
    tokens = tokens_for(settings)
    smtp.ehlo_or_helo_if_needed()
    for attempt in (1, 2):
        response = xoauth2_response(user, tokens.access_token(force=attempt == 2))
        try:
            # a refusal comes as a 334 challenge carrying JSON details: answer it with an empty line
            smtp.auth("XOAUTH2", lambda challenge=None, first=response: first if challenge is None else "")
            return
        except smtplib.SMTPAuthenticationError:
            if attempt == 2:
                tokens.rejected("SMTP")
                raise
            logger.info("SMTP refused the access token of %s: refreshing it", user)
