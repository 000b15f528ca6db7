"""`flask --app webadmin mail authorize`: get the mailbox's OAuth2 refresh token and store it where the daemon
reads it (OAUTH_REFRESH_TOKEN_FILE, outside the repository), by the loopback redirect flow with PKCE (Google's
and Microsoft's documented way for installed apps) or the device-code flow (RFC 8628, Microsoft)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.server
import pathlib
import secrets
import time
import urllib.parse
import webbrowser

import click
from flask import current_app
from flask.cli import with_appcontext

from config import Settings
from mailauth.endpoint import (
    EndpointUnavailable,
    GrantError,
    OAuthClient,
    TokenGrant,
    authorization_url,
    exchange_code,
    poll_device_flow,
    start_device_flow,
)
from mailauth.token_file import write_refresh_token
from models import utcnow
from models.mailboxes import SupportMailbox
from models.oauth import MailGrant, record_grant
from webadmin.cli import CliProblem
from webadmin.cli_mailboxes import mailboxes_cli, secret_key

PROJECT_ROOT = pathlib.Path(__file__).resolve().parents[1]


@click.group("mail", help="Support mailboxes: OAuth2 sign-in, and the mailboxes kept in the database.")
def mail_cli() -> None:
    pass


def _checked_settings(mailbox: SupportMailbox | None) -> Settings:
    settings: Settings = current_app.extensions["settings"]
    if not (settings.oauth_token_url and settings.oauth_client_id):
        raise CliProblem("set OAUTH_PROVIDER (or OAUTH_TOKEN_URL) and OAUTH_CLIENT_ID first (README: Connecting Gmail)")
    if mailbox is not None:
        secret_key()  # the refresh token is sealed into the mailbox's document
        return dataclasses.replace(settings, imap_user=mailbox.login)
    if not settings.oauth_refresh_token_file:
        raise CliProblem("set OAUTH_REFRESH_TOKEN_FILE to a path outside the repository, e.g. /etc/helpdesk/oauth")
    target = pathlib.Path(settings.oauth_refresh_token_file).resolve()
    if target == PROJECT_ROOT or PROJECT_ROOT in target.parents:
        raise CliProblem(f"OAUTH_REFRESH_TOKEN_FILE is inside the project ({PROJECT_ROOT}): choose a path outside it")
    return settings


mail_cli.add_command(mailboxes_cli)


@mail_cli.command("authorize")
@click.option("--flow", type=click.Choice(["loopback", "device"]), help="Default: loopback if the provider has it.")
@click.option("--port", default=0, show_default=True, help="Loopback redirect port (0: any free port).")
@click.option("--timeout", default=600, show_default=True, help="Seconds to wait for the sign-in.")
@click.option("--browser/--no-browser", default=True, help="Open the sign-in page in a browser on this machine.")
@click.option("--mailbox", "address", default="", help="A mailbox from `mail mailboxes` (default: IMAP_USER).")
@with_appcontext
def mail_authorize(flow: str | None, port: int, timeout: int, browser: bool, address: str) -> None:
    """Sign the mailbox in with OAuth2 and store its refresh token for the daemon."""
    mailbox = SupportMailbox.objects(address=address.strip().lower()).first() if address else None
    if address and (mailbox is None or mailbox.auth != "oauth2"):
        raise CliProblem(f"no OAuth2 mailbox {address} (flask --app webadmin mail mailboxes list)")
    settings = _checked_settings(mailbox)
    client = OAuthClient(
        settings.oauth_token_url, settings.oauth_client_id, settings.oauth_client_secret, settings.oauth_scope
    )
    current = MailGrant.objects(account=settings.imap_user).first()  # also: the database answers before sign-in
    if current is not None and current.state != "ok":
        click.echo(f"{settings.imap_user}: the grant is {current.state} ({current.error}); signing in again.")
    flow = flow or ("loopback" if settings.oauth_authorize_url else "device")
    try:
        if flow == "device":
            if not settings.oauth_device_url:
                raise CliProblem("OAUTH_DEVICE_URL is not set (OAUTH_PROVIDER=microsoft sets it): use --flow loopback")
            grant = _device_flow(client, settings.oauth_device_url, timeout)
        else:
            if not settings.oauth_authorize_url:
                raise CliProblem("OAUTH_AUTHORIZE_URL is not set (OAUTH_PROVIDER sets it): use --flow device")
            grant = _loopback_flow(client, settings.oauth_authorize_url, port, timeout, browser)
    except GrantError as exc:
        raise CliProblem(f"the provider refused: {exc}") from None
    except EndpointUnavailable as exc:
        raise CliProblem(f"the provider could not be reached: {exc}") from None
    if not grant.refresh_token:
        raise CliProblem(
            "the provider sent no refresh token: Microsoft needs offline_access in OAUTH_SCOPE; for Google remove "
            "the app's access at https://myaccount.google.com/permissions and run this again"
        )
    if mailbox is not None:
        mailbox.set_secret(grant.refresh_token, secret_key())
        SupportMailbox.objects(address=mailbox.address).update_one(
            set__sealed_secret=mailbox.sealed_secret, set__updated_at=utcnow()
        )
        where = f"sealed in the mailbox {mailbox.address}"
    else:
        write_refresh_token(settings.oauth_refresh_token_file, grant.refresh_token)
        where = f"in {settings.oauth_refresh_token_file} (mode 0600)"
    expires = dt.datetime.fromtimestamp(grant.expires_at, dt.UTC).replace(tzinfo=None, microsecond=0)
    record_grant(settings.imap_user, "ok", expires_at=expires)
    click.echo(f"Signed in. The refresh token is {where}; the daemon uses it from its next login.")


def _device_flow(client: OAuthClient, device_url: str, timeout: int) -> TokenGrant:
    device = start_device_flow(client, device_url)
    click.echo(device.message or f"Open {device.verification_uri} and enter the code {device.user_code}")
    click.echo(f"code: {device.user_code}")
    interval, deadline = device.interval, min(device.expires_at, time.time() + timeout)
    while time.time() < deadline:
        time.sleep(interval)
        try:
            grant = poll_device_flow(client, device)
        except GrantError as exc:
            if exc.error != "slow_down":
                raise
            interval += 5  # RFC 8628 3.5
            continue
        if grant is not None:
            return grant
    raise CliProblem("the code was not entered in time: run the command again")


class _Redirect(http.server.BaseHTTPRequestHandler):
    """The loopback redirect URI: `/` sends the browser to the provider; its answer comes back with ?code=."""

    server: _RedirectServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        parts = urllib.parse.urlsplit(self.path)
        if parts.path != "/":  # e.g. the browser's /favicon.ico
            self._page(404, "Not here.")
            return
        answer = {key: values[0] for key, values in urllib.parse.parse_qs(parts.query).items() if values}
        if not answer:
            self.send_response(302)
            self.send_header("Location", self.server.authorize_url)
            self.end_headers()
            return
        if not secrets.compare_digest(answer.get("state", ""), self.server.state):
            self._page(400, "This sign-in answer does not belong to this command: start it again.")
            return
        self.server.answer = answer
        ok = "code" in answer
        self._page(200 if ok else 400, "Signed in: you can close this tab." if ok else "The sign-in was refused.")

    def _page(self, status: int, text: str) -> None:
        body = f"<!doctype html><title>Helpdesk mailbox</title><p>{text}</p>".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the query holds the code: no log
        pass


class _RedirectServer(http.server.HTTPServer):
    authorize_url = ""
    state = ""
    answer: dict[str, str] | None = None


def _loopback_flow(client: OAuthClient, authorize_url: str, port: int, timeout: int, browser: bool) -> TokenGrant:
    server = _RedirectServer(("127.0.0.1", port), _Redirect)
    server.timeout = 1.0
    with server:
        redirect_uri = f"http://127.0.0.1:{server.server_address[1]}/"
        server.state = secrets.token_urlsafe(24)
        server.authorize_url, verifier = authorization_url(client, authorize_url, redirect_uri, server.state)
        click.echo(f"Open {redirect_uri} in a browser on this machine and sign in as the mailbox.")
        click.echo(f"(Or this address directly: {server.authorize_url})")
        if browser:
            webbrowser.open(redirect_uri)
        deadline = time.time() + timeout
        while server.answer is None and time.time() < deadline:
            server.handle_request()
    answer = server.answer
    if answer is None:
        raise CliProblem("no sign-in came back in time: run the command again")
    if "code" not in answer:
        raise GrantError(answer.get("error", "access_denied"), answer.get("error_description", ""))
    return exchange_code(client, answer["code"], redirect_uri, verifier)
