"""Fixtures for the OAuth2 tests: a fake provider, an IMAP server that takes only its bearer tokens (a second
Dovecot with an oauth2 passdb, scripts/mail_oauth.sh) and an SMTP server that takes only AUTH XOAUTH2."""

from __future__ import annotations

import base64
import json
import pathlib
import socket
import subprocess
import threading
import time
import uuid

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from config import Settings
from daemon.oauth import forget_tokens
from tests.conftest import ROOT, TEST_MAIL_PORTS, TEST_SLOT, make_settings
from tests.oauth_fake import CLIENT_ID, CLIENT_SECRET, FakeProvider
from tests.support import SUPPORT, MailStack

OAUTH_IMAP_PORT = TEST_MAIL_PORTS["IMAP_PORT"] + 10
OAUTH_MAIL_DIR = f"/tmp/helpdesk-test-oauth-{uuid.uuid5(uuid.NAMESPACE_URL, str(ROOT)).hex[:8]}-{TEST_SLOT}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class OAuthImap:
    """The OAuth2-only Dovecot: deliver straight into a mailbox with doveadm."""

    def __init__(self, directory: str, port: int) -> None:
        self.directory, self.port = pathlib.Path(directory), port

    def deliver(self, raw: bytes, user: str = SUPPORT) -> None:
        config = str(self.directory / "etc" / "dovecot.conf")
        subprocess.run(["doveadm", "-c", config, "save", "-u", user, "-m", "INBOX"], input=raw, check=True)

    def reset(self, user: str = SUPPORT) -> None:
        config = str(self.directory / "etc" / "dovecot.conf")
        subprocess.run(["doveadm", "-c", config, "expunge", "-u", user, "mailbox", "*", "all"], check=True)


class XOAuth2Smtp:
    """An SMTP server that accepts AUTH XOAUTH2 only, checking the bearer token with the provider (as Gmail's
    and Microsoft's do); a refusal is a 334 challenge with JSON details, then 535, as Gmail answers."""

    def __init__(self, provider: FakeProvider) -> None:
        self.provider = provider
        self.messages: list[tuple[str, bytes]] = []  # (the login it came under, content)
        self.refusals = 0
        self.port = free_port()
        self.controller = Controller(
            self, hostname="127.0.0.1", port=self.port, auth_required=True, auth_require_tls=False
        )

    async def auth_XOAUTH2(self, server, args):  # noqa: ANN001,ANN201,N802 - aiosmtpd's hook signature
        blob = base64.b64decode(args[1]) if len(args) > 1 else b""
        fields = dict(part.split("=", 1) for part in blob.decode().split("\x01") if "=" in part)
        token = fields.get("auth", "").removeprefix("Bearer ")
        user, expires = self.provider.access.get(token, ("", 0.0))
        if user and user == fields.get("user") and expires > time.time():
            return AuthResult(success=True, auth_data=user)
        self.refusals += 1
        await server.challenge_auth(json.dumps({"status": "401", "schemes": "bearer", "scope": "mail"}))
        return AuthResult(success=False, handled=False)

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001,ANN201,N802
        self.messages.append((session.auth_data, envelope.content))
        return "250 OK"

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture(scope="module")
def provider() -> FakeProvider:
    fake = FakeProvider()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def oauth_imap(provider: FakeProvider) -> OAuthImap:
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "MAIL_DIR": OAUTH_MAIL_DIR,
        "IMAP_PORT": str(OAUTH_IMAP_PORT),
        "INTROSPECTION_URL": f"{provider.url}/introspect",
    }
    script = str(ROOT / "scripts" / "mail_oauth.sh")
    subprocess.run(["bash", script, "purge"], env=env, capture_output=True, check=True)
    started = subprocess.run(["bash", script, "start"], env=env, capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    yield OAuthImap(OAUTH_MAIL_DIR, OAUTH_IMAP_PORT)
    subprocess.run(["bash", script, "purge"], env=env, capture_output=True)


@pytest.fixture()
def xoauth2_smtp(provider: FakeProvider) -> XOAuth2Smtp:
    server = XOAuth2Smtp(provider)
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def grant(provider: FakeProvider, oauth_imap: OAuthImap, tmp_path: pathlib.Path) -> str:
    """A fresh grant for the support mailbox, its refresh token in a file as `mail authorize` leaves it."""
    forget_tokens()
    provider.lifetime = 3600
    provider.calls.clear()
    oauth_imap.reset()
    refresh_token = provider.add_grant(SUPPORT)
    (tmp_path / "refresh-token").write_text(refresh_token + "\n")
    (tmp_path / "refresh-token").chmod(0o600)
    yield refresh_token
    forget_tokens()


def oauth_settings(
    db: str, mail_stack: MailStack, provider: FakeProvider, tmp_path: pathlib.Path, **overrides: object
) -> Settings:
    """The support mailbox on the OAuth2 Dovecot; outbound mail to the password-free sink unless overridden."""
    values: dict[str, object] = {
        "imap_port": OAUTH_IMAP_PORT,
        "imap_password": "",
        "imap_auth": "oauth2",
        "oauth_token_url": f"{provider.url}/token",
        "oauth_authorize_url": f"{provider.url}/authorize",
        "oauth_device_url": f"{provider.url}/device",
        "oauth_scope": "mail offline_access",
        "oauth_client_id": CLIENT_ID,
        "oauth_client_secret": CLIENT_SECRET,
        "oauth_refresh_token_file": str(tmp_path / "refresh-token"),
        **overrides,
    }
    return make_settings(db, mail_stack, **values)


def run_in_thread(target, *args: object) -> tuple[threading.Thread, list[object]]:  # noqa: ANN001
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(target(*args)), daemon=True)
    thread.start()
    return thread, result
