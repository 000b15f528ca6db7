"""The settings of each support mailbox: the settings' own and the enabled `SupportMailbox` documents, for
reading them (daemon/mailboxes.py) and for sending From them (daemon/outbox.py)."""

from __future__ import annotations

import datetime as dt
import logging
import threading

from config import Settings
from models.base import utcnow
from models.mail import MailboxCursor
from models.mailboxes import MailboxSettings, SupportMailbox, enabled_mailboxes, mailbox_by_address, mailbox_of

logger = logging.getLogger(__name__)
_cache: dict[str, tuple[dt.datetime | None, Settings, MailboxSettings]] = {}
_cache_lock = threading.Lock()


class MailboxUnavailable(Exception):
    """A mailbox's settings cannot be had (its credential does not open with MAILBOX_SECRET_KEY)."""


def settings_of(mailbox: SupportMailbox, base: Settings) -> MailboxSettings:
    """The mailbox's settings, the same object while the document is unchanged (the outbox keeps one SMTP
    app per settings object). Raises MailboxUnavailable when its credential cannot be unsealed."""
    with _cache_lock:
        cached = _cache.get(mailbox.address)
        if cached is not None and cached[0] == mailbox.updated_at and cached[1] is base:
            return cached[2]
    try:
        settings = mailbox.settings_for(base, base.mailbox_secret_key)
    except Exception as exc:  # SealError, or no key configured: reported on the mailbox, never a crash
        raise MailboxUnavailable(f"{mailbox.address}: {exc}") from exc
    with _cache_lock:
        _cache[mailbox.address] = (mailbox.updated_at, base, settings)
    return settings


def sender_settings(address: str, base: Settings) -> Settings:
    """The settings an email From `address` is sent with ("" or an unknown address: the settings' mailbox)."""
    if not address:
        return base
    own = mailbox_of(base)
    if own is not None and own.mailbox_address == address:
        return base
    if own is not None:  # only the settings' mailbox knows the others; this should not happen
        logger.warning("an email of mailbox %s reached the sender of %s", address, own.mailbox_address)
    mailbox = mailbox_by_address(address)
    if mailbox is None:
        logger.warning("mailbox %s no longer exists; sending from the settings' address", address)
        return base
    return settings_of(mailbox, base)


def record_unavailable(mailbox: SupportMailbox, problem: Exception) -> None:
    """Show a mailbox that cannot even be configured on its cursor, as a failed poll is shown."""
    text = f"{utcnow():%Y-%m-%dT%H:%M:%SZ} {type(problem).__name__}: {problem}"[:200]
    MailboxCursor.objects(mailbox=mailbox.cursor_name).update_one(
        set__last_error=text, set__updated_at=utcnow(), upsert=True
    )


def readable_mailboxes(base: Settings) -> list[tuple[str, Settings]]:
    """(address, settings) of every mailbox to read: the settings' own first (address ""), then each enabled one.
    One that cannot be configured is recorded and left out."""
    found: list[tuple[str, Settings]] = [("", base)]
    for mailbox in enabled_mailboxes():
        try:
            found.append((mailbox.address, settings_of(mailbox, base)))
        except MailboxUnavailable as problem:
            logger.error("mailbox %s cannot be read: %s", mailbox.address, problem)
            record_unavailable(mailbox, problem)
    return found
