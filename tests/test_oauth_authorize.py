# ruff: noqa: F811 - pytest fixtures imported from tests.oauth_support
"""`flask --app webadmin mail authorize` against the fake provider: the loopback redirect flow with PKCE (a real
HTTP round trip through the command's redirect listener) and the device-code flow; and the OAUTH_* settings."""

from __future__ import annotations

import pathlib
import socket
import stat
import time

import pytest
import requests
from click.testing import Result

from config import SettingsError, load_settings
from daemon.poller import poll_once
from mailauth.token_file import read_refresh_token
from models.oauth import MailGrant
from tests.daemon_support import raw_email
from tests.oauth_fake import FakeProvider
from tests.oauth_support import (  # noqa: F401
    OAuthImap,
    free_port,
    grant,
    oauth_imap,
    oauth_settings,
    provider,
    run_in_thread,
)
from tests.support import SUPPORT, MailStack
from webadmin import create_app


def _authorize(settings, *args: str) -> tuple:  # noqa: ANN001
    app = create_app(settings)
    return run_in_thread(lambda: app.test_cli_runner().invoke(args=["mail", "authorize", *args]))


def _listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


def test_loopback_flow_with_pkce_stores_a_refresh_token_the_daemon_then_uses(
    db: str, mail: MailStack, provider: FakeProvider, oauth_imap: OAuthImap, grant: str, tmp_path: pathlib.Path
) -> None:
    token_file = tmp_path / "secrets" / "refresh-token"
    settings = oauth_settings(db, mail, provider, tmp_path, oauth_refresh_token_file=str(token_file))
    provider.consenting_user = SUPPORT
    port = free_port()
    thread, result = _authorize(settings, "--flow", "loopback", "--port", str(port), "--no-browser")
    _listening(port)
    # the admin's browser: our listener -> the provider's consent page -> back to the listener with a code
    page = requests.get(f"http://127.0.0.1:{port}/", timeout=10)
    thread.join(30)
    [outcome] = result
    assert isinstance(outcome, Result) and outcome.exit_code == 0, outcome.output
    assert page.status_code == 200 and "Signed in" in page.text
    stored = read_refresh_token(str(token_file))
    assert provider.grants[stored].user == SUPPORT and stored not in outcome.output
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert [form.get("code_verifier") is not None for path, form in provider.calls if path == "/token"] == [True]
    assert MailGrant.objects.get(account=SUPPORT).state == "ok"
    oauth_imap.deliver(raw_email(subject="After authorize"))
    assert poll_once(settings).outcomes == {"Created": 1}


def test_loopback_listener_refuses_an_answer_with_another_state(
    db: str, mail: MailStack, provider: FakeProvider, oauth_imap: OAuthImap, grant: str, tmp_path: pathlib.Path
) -> None:
    settings = oauth_settings(db, mail, provider, tmp_path)
    port = free_port()
    thread, result = _authorize(settings, "--flow", "loopback", "--port", str(port), "--no-browser", "--timeout", "3")
    _listening(port)
    forged = requests.get(f"http://127.0.0.1:{port}/?code=stolen&state=guess", timeout=10)
    thread.join(30)
    [outcome] = result
    assert forged.status_code == 400
    assert outcome.exit_code == 2 and "no sign-in came back in time" in outcome.output
    assert read_refresh_token(settings.oauth_refresh_token_file) == grant  # the old grant is untouched


def test_device_flow_polls_until_the_admin_enters_the_code(
    db: str, mail: MailStack, provider: FakeProvider, oauth_imap: OAuthImap, grant: str, tmp_path: pathlib.Path
) -> None:
    settings = oauth_settings(db, mail, provider, tmp_path)
    provider.devices.clear()
    thread, result = _authorize(settings, "--flow", "device")
    deadline = time.monotonic() + 10
    while not provider.devices and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.5)  # at least one "authorization_pending" poll first
    [device] = provider.devices.values()
    assert provider.approve_devices(SUPPORT) == 1
    thread.join(30)
    [outcome] = result
    assert outcome.exit_code == 0, outcome.output
    assert f"Open {provider.url}/device and enter the code {device['user_code']}" in outcome.output
    polls = [form for path, form in provider.calls if path == "/token"]
    assert len(polls) >= 2 and all(form["grant_type"].endswith("device_code") for form in polls)
    stored = read_refresh_token(settings.oauth_refresh_token_file)
    assert stored != grant and provider.grants[stored].user == SUPPORT


def test_authorize_refuses_a_token_file_inside_the_project(
    db: str, mail: MailStack, provider: FakeProvider, oauth_imap: OAuthImap, grant: str, tmp_path: pathlib.Path
) -> None:
    inside = pathlib.Path(__file__).resolve().parent.parent / "instance" / "refresh-token"
    settings = oauth_settings(db, mail, provider, tmp_path, oauth_refresh_token_file=str(inside))
    thread, result = _authorize(settings, "--flow", "device")
    thread.join(30)
    [outcome] = result
    assert outcome.exit_code == 2 and "inside the project" in outcome.output
    assert not inside.exists() and provider.calls == []


BASE = {"SECRET_KEY": "s" * 40, "JWT_SECRET_KEY": "j" * 40}


def test_provider_presets_fill_the_documented_endpoints_and_scopes() -> None:
    google = load_settings({**BASE, "IMAP_AUTH": "oauth2", "OAUTH_PROVIDER": "google", "OAUTH_CLIENT_ID": "c"}, None)
    assert google.oauth_token_url == "https://oauth2.googleapis.com/token"
    assert google.oauth_scope == "https://mail.google.com/"
    microsoft = load_settings(
        {**BASE, "MAIL_AUTH": "oauth2", "OAUTH_PROVIDER": "microsoft", "OAUTH_TENANT": "contoso.com"}
        | {"OAUTH_CLIENT_ID": "c"},
        None,
    )
    assert microsoft.oauth_device_url == "https://login.microsoftonline.com/contoso.com/oauth2/v2.0/devicecode"
    assert microsoft.oauth_scope.split() == [
        "https://outlook.office.com/IMAP.AccessAsUser.All",
        "https://outlook.office.com/SMTP.Send",
        "offline_access",
    ]
    assert microsoft.flask_config()["MAIL_PASSWORD"] is None  # Flask-Mail must not try a password login


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"IMAP_AUTH": "oauth2"}, "OAUTH_TOKEN_URL: is required when IMAP_AUTH=oauth2"),
        ({"IMAP_AUTH": "kerberos"}, "IMAP_AUTH: expected one of password, oauth2"),
        ({"OAUTH_TOKEN_URL": "http://idp.example.com/token"}, "OAUTH_TOKEN_URL: expected an https:// URL"),
        (
            {"MAIL_AUTH": "oauth2", "OAUTH_PROVIDER": "google", "OAUTH_CLIENT_ID": "c"}
            | {"OAUTH_REFRESH_TOKEN_FILE": "token.txt"},
            "OAUTH_REFRESH_TOKEN_FILE: expected an absolute path",
        ),
    ],
)
def test_bad_oauth_settings_fail_at_start_with_one_line(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings({**BASE, **environ}, None)
