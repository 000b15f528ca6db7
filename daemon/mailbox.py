"""IMAP access (the only module that speaks IMAP): connect, read new messages by UID, flag or move them.

Messages are read with BODY.PEEK[] (never implicitly \\Seen), from the stored cursor on; a message
is flagged, moved and passed by the cursor only after ingestion stored it.
"""

from __future__ import annotations

import datetime as dt
import logging
import ssl
from collections.abc import Iterator
from contextlib import contextmanager

from imapclient import IMAPClient
from imapclient.imapclient import SEEN

from config import Settings
from daemon.oauth import imap_login
from models import MailboxCursor, utcnow
from models.mailboxes import cursor_key

logger = logging.getLogger(__name__)
INGESTED_KEYWORD = b"$HelpdeskIngested"
MAX_ERROR_LENGTH = 200


def mailbox_name(settings: Settings) -> str:
    return cursor_key(settings.imap_user, settings.imap_host, settings.imap_port, settings.imap_folder)


def poll_error_text(exc: BaseException, at: dt.datetime, secrets: tuple[str, ...] = ()) -> str:
    """One short line for a failed poll: when, the exception's type and message, secrets masked."""
    message = " ".join(str(exc).split())  # one line, whatever the server sent
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    kind = type(exc).__qualname__  # imaplib's errors are all named "error": "IMAP4.error" says more
    text = f"{at:%Y-%m-%dT%H:%M:%SZ} {kind}: {message}".rstrip(": ")
    return text if len(text) <= MAX_ERROR_LENGTH else text[: MAX_ERROR_LENGTH - 1] + "…"


def record_poll_failure(settings: Settings, exc: BaseException) -> None:
    """Note a failed poll on the mailbox's cursor; `last_poll_at` (the last successful poll) stays as it was."""
    now = utcnow()
    error = poll_error_text(exc, now, (settings.imap_password,))
    try:
        MailboxCursor.objects(mailbox=mailbox_name(settings)).update_one(
            set__last_error=error, set__updated_at=now, upsert=True
        )
    except Exception:  # e.g. the database is what failed; the caller logs the poll error itself
        logger.warning("could not record the poll failure of %s", mailbox_name(settings), exc_info=True)


def _tls_context(settings: Settings) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not settings.imap_verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


@contextmanager
def connect(settings: Settings, timeout: float = 30.0) -> Iterator[IMAPClient]:
    """A logged-in client per IMAP_SECURITY (ssl, starttls or none); logs out on exit."""
    context = _tls_context(settings)
    client = IMAPClient(
        settings.imap_host,
        port=settings.imap_port,
        ssl=settings.imap_security == "ssl",
        ssl_context=context if settings.imap_security == "ssl" else None,
        timeout=timeout,
    )
    try:
        if settings.imap_security == "starttls":
            client.starttls(context)
        imap_login(client, settings)  # a password or an OAuth2 bearer token (daemon/oauth.py)
        yield client
    finally:
        try:
            client.logout()
        except Exception:  # the connection may already be gone; close the socket and move on
            try:
                client.shutdown()
            except Exception:  # noqa: S110 - nothing more to clean up
                pass


class Mailbox:
    """One selected folder and its cursor (last UID seen under one UIDVALIDITY)."""

    def __init__(self, client: IMAPClient, settings: Settings) -> None:
        self.client, self.settings = client, settings
        self.name = mailbox_name(settings)
        self.cursor = MailboxCursor.objects(mailbox=self.name).first() or MailboxCursor(mailbox=self.name)
        self.can_move = b"MOVE" in client.capabilities()
        self.can_idle = client.has_capability("IDLE")

    def select(self) -> None:
        info = self.client.select_folder(self.settings.imap_folder)
        uidvalidity = int(info[b"UIDVALIDITY"])
        if self.cursor.uidvalidity != uidvalidity:
            if self.cursor.uidvalidity is not None:
                # UIDs were renumbered: read everything again; the Message-ID ledger drops what we have
                logger.warning(
                    "UIDVALIDITY of %s changed (%s -> %s): rescanning", self.name, self.cursor.uidvalidity, uidvalidity
                )
            self.cursor.uidvalidity, self.cursor.last_uid = uidvalidity, 0
            self._save_cursor()

    def new_uids(self) -> list[int]:
        last = self.cursor.last_uid or 0
        return sorted(uid for uid in self.client.search(["UID", f"{last + 1}:*"]) if uid > last)

    def fetch(self, uids: list[int]) -> Iterator[tuple[int, bytes]]:
        """(uid, raw bytes) in UID order, fetched in batches of IMAP_BATCH_SIZE."""
        size = max(1, self.settings.imap_batch_size)
        for start in range(0, len(uids), size):
            batch = uids[start : start + size]
            data = self.client.fetch(batch, ["BODY.PEEK[]"])
            for uid in batch:
                raw = data.get(uid, {}).get(b"BODY[]")
                if raw is None:  # expunged meanwhile
                    continue
                yield uid, raw

    def mark_done(self, uids: list[int]) -> None:
        """After the messages are stored: flag them \\Seen + keyword, move if configured, advance the cursor."""
        if not uids:
            return
        self.client.add_flags(uids, [SEEN, INGESTED_KEYWORD], silent=True)
        if self.settings.imap_processed_folder:
            if self.can_move:
                self.client.move(uids, self.settings.imap_processed_folder)
            else:
                self.client.copy(uids, self.settings.imap_processed_folder)
                self.client.delete_messages(uids, silent=True)
                self.client.uid_expunge(uids)
        self.cursor.last_uid = max(uids[-1], self.cursor.last_uid or 0)
        self._save_cursor()

    def record_poll(self) -> None:
        """A successful poll: its time, and no error (a failed one goes through `record_poll_failure`)."""
        self.cursor.last_poll_at = utcnow()
        self.cursor.last_error = None
        self._save_cursor()

    def _save_cursor(self) -> None:
        self.cursor.updated_at = utcnow()
        self.cursor.save()
