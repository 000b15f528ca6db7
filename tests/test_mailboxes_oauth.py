# ruff: noqa: F811 - pytest fixtures imported from tests.oauth_support
"""An OAuth2 support mailbox kept in the database (issue 12): read with its own grant, its tickets acknowledged
through its own XOAUTH2 SMTP login From its address, and a rotated refresh token sealed back into its document
so that a restarted daemon still signs in. OAuth2 Dovecot, XOAUTH2 SMTP server, the fake token endpoint."""

from __future__ import annotations

import email
import email.policy
import pathlib

import pytest

from daemon.oauth import forget_tokens
from daemon.scheduler import run_once
from mailauth.sealed import new_key
from models import Ticket
from models.mailboxes import SupportMailbox
from tests.daemon_support import raw_email
from tests.oauth_fake import FakeProvider
from tests.oauth_support import (  # noqa: F401
    OAuthImap,
    XOAuth2Smtp,
    grant,
    oauth_imap,
    oauth_settings,
    provider,
    xoauth2_smtp,
)
from tests.support import MailStack

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # loopback only
KEY = new_key()
HELP = "help@example.test"


def test_an_oauth2_mailbox_reads_and_sends_with_its_own_grant_and_keeps_a_rotated_token(
    db: str,
    mail: MailStack,
    provider: FakeProvider,
    oauth_imap: OAuthImap,
    grant: str,
    xoauth2_smtp: XOAuth2Smtp,
    tmp_path: pathlib.Path,
) -> None:
    mailbox = SupportMailbox(
        address=HELP,
        imap_host="127.0.0.1",
        imap_port=oauth_imap.port,
        imap_security="none",
        auth="oauth2",
        smtp_host="127.0.0.1",
        smtp_port=xoauth2_smtp.port,
        smtp_security="none",
    )
    first_token = provider.add_grant(HELP)
    mailbox.set_secret(first_token, KEY)
    mailbox.save()
    oauth_imap.deliver(raw_email(subject="Through OAuth2", to=HELP), user=HELP)
    provider.rotate = True  # as Microsoft does: each refresh answers with a new refresh token, the old one ends
    try:
        summary = run_once(oauth_settings(db, mail, provider, tmp_path, mailbox_secret_key=KEY))
        assert summary[f"mailbox:{HELP}"] == {"Created": 1}
        assert Ticket.objects.get().mailbox == HELP
        [(login, content)] = xoauth2_smtp.messages  # the acknowledgement, through the mailbox's own SMTP login
        ack = email.message_from_bytes(content, policy=email.policy.default)
        assert login == HELP and ack["From"] == HELP and ack["Subject"].endswith("Through OAuth2")
        sealed = SupportMailbox.objects.get(address=HELP).secret(KEY)
        assert sealed != first_token and first_token not in provider.grants and provider.grants[sealed].user == HELP

        forget_tokens()  # a restarted daemon: only what is stored is left
        oauth_imap.deliver(raw_email(subject="After the restart", to=HELP), user=HELP)
        again = run_once(oauth_settings(db, mail, provider, tmp_path, mailbox_secret_key=KEY))
        assert again[f"mailbox:{HELP}"] == {"Created": 1}
    finally:
        provider.rotate = False
