# ruff: noqa: F811 - pytest fixtures imported from tests.oauth_support
"""Support mailboxes kept in the database (issue 12, the model and CLI side): credentials sealed and never
shown, and each mailbox's settings reading its own real mailbox (password Dovecot, OAuth2 Dovecot)."""

from __future__ import annotations

import pathlib
import time

import mongoengine
import pytest

from daemon.poller import poll_once
from mailauth.sealed import SealError, new_key
from models import MailboxCursor, Ticket
from models.mailboxes import SupportMailbox, enabled_mailboxes
from models.oauth import MailGrant
from tests.conftest import make_settings
from tests.daemon_support import raw_email
from tests.oauth_fake import FakeProvider
from tests.oauth_support import OAuthImap, grant, oauth_imap, oauth_settings, provider, run_in_thread  # noqa: F401
from tests.support import SUPPORT, MailStack, make_email
from tests.web_support import cookie_login, make_user
from webadmin import create_app

KEY = new_key()


def _cli(settings, *args: str, input: str | None = None):  # noqa: ANN001,ANN202,A002
    return create_app(settings).test_cli_runner().invoke(args=["mail", "mailboxes", *args], input=input)


def test_a_password_mailbox_is_stored_sealed_and_its_settings_read_its_inbox(db: str, mail: MailStack) -> None:
    base = make_settings(db, mail, mailbox_secret_key=KEY, imap_port=1, imap_user="nobody@example.test")
    added = _cli(
        base,
        "add",
        SUPPORT,
        "--name",
        "Support",
        "--imap-host",
        "127.0.0.1",
        "--imap-port",
        str(mail.imap_port),
        "--imap-security",
        "none",
        "--signature",
        "The support team",
        "--password-stdin",
        input="password\n",
    )
    assert added.exit_code == 0, added.output
    raw = mongoengine.get_db()["support_mailboxes"].find_one({"_id": SUPPORT})
    assert [name for name, value in raw.items() if name != "auth" and "password" in str(value)] == []
    listed = _cli(base, "list")
    assert f"on  {SUPPORT} (password as {SUPPORT}) 127.0.0.1:{mail.imap_port}/INBOX: credential stored" in listed.output
    assert "password\n" not in listed.output
    [mailbox] = enabled_mailboxes()
    settings = mailbox.settings_for(base, KEY)
    assert (settings.imap_user, settings.imap_password, settings.mail_default_sender) == (SUPPORT, "password", SUPPORT)
    mail.send(make_email(subject="Into the database's mailbox"))
    assert poll_once(settings).outcomes == {"Created": 1}
    assert Ticket.objects.get().subject == "Into the database's mailbox"
    assert MailboxCursor.objects.get().mailbox.startswith(f"{SUPPORT}@127.0.0.1:{mail.imap_port}/")
    assert _cli(base, "enable", SUPPORT, "--off").exit_code == 0 and enabled_mailboxes() == []


def test_a_credential_sealed_with_another_key_is_refused_with_a_clear_error(db: str, mail: MailStack) -> None:
    mailbox = SupportMailbox(address="billing@example.test", imap_host="127.0.0.1")
    mailbox.set_secret("hunter2", KEY)
    mailbox.save()
    with pytest.raises(SealError, match="does not open with MAILBOX_SECRET_KEY"):
        SupportMailbox.objects.get().settings_for(make_settings(db, mail), new_key())
    refused = _cli(make_settings(db, mail), "add", "x@example.test", "--imap-host", "h", input="pw\n")
    assert refused.exit_code == 2 and "set MAILBOX_SECRET_KEY first" in refused.output


def test_an_oauth2_mailbox_is_authorized_into_its_document_and_then_read(
    db: str, mail: MailStack, provider: FakeProvider, oauth_imap: OAuthImap, grant: str, tmp_path: pathlib.Path
) -> None:
    base = oauth_settings(db, mail, provider, tmp_path, mailbox_secret_key=KEY, imap_user="other@example.test")
    address = "help@example.test"
    args = ["add", address, "--imap-host", "127.0.0.1", "--imap-port", str(oauth_imap.port), "--imap-security"]
    assert _cli(base, *args, "none", "--auth", "oauth2").exit_code == 0
    provider.devices.clear()
    app = create_app(base)
    thread, result = run_in_thread(
        lambda: app.test_cli_runner().invoke(args=["mail", "authorize", "--flow", "device", "--mailbox", address])
    )
    deadline = time.monotonic() + 10
    while not provider.devices and time.monotonic() < deadline:
        time.sleep(0.05)
    provider.approve_devices(address)
    thread.join(30)
    [outcome] = result
    assert outcome.exit_code == 0 and f"sealed in the mailbox {address}" in outcome.output, outcome.output
    mailbox = SupportMailbox.objects.get(address=address)
    assert provider.grants[mailbox.secret(KEY)].user == address
    oauth_imap.deliver(raw_email(subject="To the help address", to=address), user=address)
    assert poll_once(mailbox.settings_for(base, KEY)).outcomes == {"Created": 1}
    assert MailGrant.objects.get(account=address).state == "ok"
    assert "grant ok" in _cli(base, "list").output


def test_admins_add_a_mailbox_in_the_panel_and_its_credential_is_write_only(db: str, mail: MailStack) -> None:
    app = create_app(make_settings(db, mail, mailbox_secret_key=KEY))
    make_user("admin@example.test", role="admin")
    admin = app.test_client()
    csrf = cookie_login(admin, "admin@example.test")
    form = {
        "address": "Billing@Example.test",
        "name": "Billing",
        "enabled": "y",
        "imap_host": "imap.example.test",
        "imap_port": "993",
        "imap_security": "ssl",
        "imap_folder": "INBOX",
        "auth": "password",
        "sasl_mechanism": "xoauth2",
        "smtp_port": "587",
        "smtp_security": "starttls",
        "new_secret": "s3cret-Passw0rd",
        "csrf_token": csrf,
    }
    created = admin.post("/admin/mailboxes/new/", data=form)
    assert created.status_code == 302, created.get_data(as_text=True)[:800]
    mailbox = SupportMailbox.objects.get(address="billing@example.test")
    assert mailbox.secret(KEY) == "s3cret-Passw0rd"
    for page in ("/admin/mailboxes/", "/admin/mailboxes/edit/?id=billing@example.test"):
        text = admin.get(page).get_data(as_text=True)
        assert (
            "billing@example.test" in text
            and "s3cret-Passw0rd" not in text
            and mailbox.sealed_secret.decode() not in text
        )
    # saving the form again without a new credential keeps the stored one
    kept = admin.post(
        "/admin/mailboxes/edit/?id=billing@example.test", data={**form, "new_secret": "", "name": "Bills"}
    )
    assert kept.status_code == 302
    assert (
        SupportMailbox.objects.get().secret(KEY) == "s3cret-Passw0rd" and SupportMailbox.objects.get().name == "Bills"
    )
