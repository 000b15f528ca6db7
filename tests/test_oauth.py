# ruff: noqa: F811 - pytest fixtures imported from tests.oauth_support
"""OAuth2 mailboxes (issue 12) against real servers: a Dovecot whose oauth2 passdb asks a fake provider's
introspection endpoint about each bearer token, an SMTP server that takes only AUTH XOAUTH2, and the provider's
token endpoint refreshing, rotating and revoking grants."""

from __future__ import annotations

import pathlib
import time

import pytest

from daemon.oauth import MailAuthError
from daemon.outbox import send_due
from daemon.poller import poll_once
from models import MailboxCursor, OutboundEmail, queue_email
from models.oauth import MailGrant
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
from tests.support import SUPPORT, MailStack
from tests.web_support import cookie_login, make_user
from webadmin import create_app

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # loopback only


def _introspections(provider: FakeProvider) -> int:
    return sum(1 for path, _ in provider.calls if path == "/introspect")


def test_poller_logs_in_with_a_bearer_token_and_refreshes_it_before_it_expires(
    db: str, mail: MailStack, provider: FakeProvider, oauth_imap: OAuthImap, grant: str, tmp_path: pathlib.Path
) -> None:
    provider.lifetime = 3  # the client refreshes 2 s before expiry: after 1 s the token counts as used up
    settings = oauth_settings(db, mail, provider, tmp_path, oauth_refresh_margin_seconds=2)
    oauth_imap.deliver(raw_email(subject="First over OAuth2"))
    assert poll_once(settings).outcomes == {"Created": 1}
    assert provider.refreshes() == 1 and _introspections(provider) == 1
    time.sleep(1.2)
    oauth_imap.deliver(raw_email(subject="Second over OAuth2"))
    assert poll_once(settings).outcomes == {"Created": 1}
    # refreshed ahead of expiry: a new token, and the server never saw an expired one
    assert provider.refreshes() == 2 and _introspections(provider) == 2
    state = MailGrant.objects.get(account=SUPPORT)
    assert state.state == "ok" and state.refreshed_at is not None and state.expires_at is not None


def test_a_token_the_server_rejects_mid_run_is_refreshed_once_and_the_login_retried(
    db: str, mail: MailStack, provider: FakeProvider, oauth_imap: OAuthImap, grant: str, tmp_path: pathlib.Path
) -> None:
    settings = oauth_settings(db, mail, provider, tmp_path, imap_sasl_mechanism="oauthbearer")
    assert poll_once(settings).outcomes == {}
    provider.expire_access_tokens()  # the provider ends the token early (e.g. a policy change)
    oauth_imap.deliver(raw_email(subject="After the token expired"))
    assert poll_once(settings).outcomes == {"Created": 1}
    assert provider.refreshes() == 2 and _introspections(provider) == 3  # the refused login, then the retry


def test_a_revoked_grant_stops_the_poll_and_healthz_and_the_admin_panel_say_what_to_do(
    db: str, mail: MailStack, provider: FakeProvider, oauth_imap: OAuthImap, grant: str, tmp_path: pathlib.Path
) -> None:
    settings = oauth_settings(db, mail, provider, tmp_path)
    app = create_app(settings)
    assert poll_once(settings).outcomes == {}
    assert app.test_client().get("/healthz").get_json()["mail_grants"][0]["state"] == "ok"
    provider.revoke(grant)
    oauth_imap.deliver(raw_email(subject="Waiting for a new grant"))
    with pytest.raises(MailAuthError):
        poll_once(settings)
    body = app.test_client().get("/healthz").get_json()
    assert body["status"] == "degraded"
    [shown] = body["mail_grants"]
    assert shown["account"] == SUPPORT and shown["state"] == "revoked"
    assert shown["error"] == "invalid_grant: Token has been expired or revoked."
    assert "flask --app webadmin mail authorize" in shown["action"]
    assert "refused" in body["last_poll_error"] and grant not in str(body)
    admin = app.test_client()
    make_user("admin@example.test", role="admin")
    cookie_login(admin, "admin@example.test")
    panel = admin.get("/admin/mail_grants/").get_data(as_text=True)
    assert "revoked" in panel and "Token has been expired or revoked." in panel and "mail authorize" in panel
    calls = provider.refreshes()
    with pytest.raises(MailAuthError):  # the refused refresh token is not sent again at once
        poll_once(settings)
    assert provider.refreshes() == calls
    # a new grant written to the file (as `mail authorize` does) is used at the next poll
    (tmp_path / "refresh-token").write_text(provider.add_grant(SUPPORT))
    assert poll_once(settings).outcomes == {"Created": 1}
    assert app.test_client().get("/healthz").get_json()["status"] == "ok"
    assert MailboxCursor.objects.get().last_error is None


def test_a_mail_server_refusing_a_fresh_token_is_shown_as_rejected(
    db: str, mail: MailStack, provider: FakeProvider, oauth_imap: OAuthImap, grant: str, tmp_path: pathlib.Path
) -> None:
    settings = oauth_settings(db, mail, provider, tmp_path, imap_user="someone-else@example.test")
    provider.grants[grant].user = "support@example.test"  # a token for another mailbox than the one we log in to
    with pytest.raises(Exception, match="AUTHENTICATIONFAILED|Authentication failed"):
        poll_once(settings)
    state = MailGrant.objects.get(account="someone-else@example.test")
    assert state.state == "rejected" and "IMAP/SMTP AUTH" in state.action
    assert provider.refreshes() == 2  # one refresh, one more after the refusal


def test_outbox_sends_with_xoauth2_and_refreshes_after_a_refused_token(
    db: str,
    mail: MailStack,
    provider: FakeProvider,
    oauth_imap: OAuthImap,
    grant: str,
    xoauth2_smtp: XOAuth2Smtp,
    tmp_path: pathlib.Path,
) -> None:
    settings = oauth_settings(
        db, mail, provider, tmp_path, mail_auth="oauth2", mail_port=xoauth2_smtp.port, mail_username=SUPPORT
    )
    queue_email(kind="reply", to=["customer@example.test"], subject="One", text="first", domain="example.test")
    assert send_due(settings) == 1
    provider.expire_access_tokens()
    queue_email(kind="reply", to=["customer@example.test"], subject="Two", text="second", domain="example.test")
    assert send_due(settings) == 1
    assert [login for login, _ in xoauth2_smtp.messages] == [SUPPORT, SUPPORT]
    assert b"Subject: Two" in xoauth2_smtp.messages[1][1]
    assert xoauth2_smtp.refusals == 1 and provider.refreshes() == 2


def test_outbox_with_a_revoked_grant_keeps_the_emails_queued_with_the_reason(
    db: str,
    mail: MailStack,
    provider: FakeProvider,
    oauth_imap: OAuthImap,
    grant: str,
    xoauth2_smtp: XOAuth2Smtp,
    tmp_path: pathlib.Path,
) -> None:
    settings = oauth_settings(db, mail, provider, tmp_path, mail_auth="oauth2", mail_port=xoauth2_smtp.port)
    provider.revoke(grant)
    for subject in ("One", "Two"):
        queue_email(kind="reply", to=["customer@example.test"], subject=subject, text=".", domain="example.test")
    assert send_due(settings) == 0
    assert xoauth2_smtp.messages == []
    states = sorted((e.state, e.attempts, bool(e.last_error)) for e in OutboundEmail.objects)
    assert states == [("queued", 0, False), ("queued", 1, True)]  # the second was never tried
    assert "invalid_grant" in OutboundEmail.objects(attempts=1).get().last_error
    assert MailGrant.objects.get(account=SUPPORT).state == "revoked"


def test_a_rotated_refresh_token_is_written_back_and_used_next_time(
    db: str, mail: MailStack, provider: FakeProvider, oauth_imap: OAuthImap, grant: str, tmp_path: pathlib.Path
) -> None:
    provider.rotate = True  # as Microsoft does: each refresh answers with a new refresh token, the old one ends
    try:
        settings = oauth_settings(db, mail, provider, tmp_path)
        assert poll_once(settings).outcomes == {}
        rotated = (tmp_path / "refresh-token").read_text().strip()
        assert rotated != grant and grant not in provider.grants and provider.grants[rotated].user == SUPPORT
        provider.expire_access_tokens()
        oauth_imap.deliver(raw_email(subject="After a rotation"))
        assert poll_once(settings).outcomes == {"Created": 1}
        assert (tmp_path / "refresh-token").read_text().strip() not in (grant, rotated)
        assert MailGrant.objects.get(account=SUPPORT).state == "ok"
    finally:
        provider.rotate = False
