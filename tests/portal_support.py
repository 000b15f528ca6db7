"""Helpers for the customer-side tests: the anonymous forms' token, links from the sink, the daemon's intake."""

from __future__ import annotations

import re
from email.message import EmailMessage

from config import Settings
from daemon.outbox import send_due
from daemon.web_intake import ingest_web_submissions
from tests.support import MailStack

LINK = re.compile(r"https?://\S+")


def form_token(client, path: str = "/portal/new") -> str:  # noqa: ANN001 - a FlaskClient
    """GET a portal form page and return the token its form must send back (its cookie's value)."""
    response = client.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    cookie = client.get_cookie("portal_form", path="/portal")
    assert cookie is not None
    return cookie.value


def submit_form(client, **fields: object):  # noqa: ANN001,ANN201
    values = {"name": "Ada Lovelace", "email": "ada@customer.test", "subject": "Printer offline", "text": "It is off."}
    values.update(fields)
    return client.post(
        "/portal/new", data={**values, "form_token": form_token(client)}, content_type="multipart/form-data"
    )


def link_in(message: EmailMessage, path_part: str) -> str:
    """The path of the first link in an email containing `path_part`."""
    body = message.get_content() if not message.is_multipart() else message.get_body(("plain",)).get_content()
    for url in LINK.findall(body):
        if path_part in url:
            return "/" + url.split("/", 3)[3]
    raise AssertionError(f"no {path_part} link in {body!r}")


def sent_emails(settings: Settings, mail: MailStack, count: int) -> list[EmailMessage]:
    """Run the daemon's outbox job and wait for `count` emails in the sink."""
    send_due(settings)
    return mail.wait_for_sink(count)


def daemon_intake(settings: Settings) -> int:
    """One pass of the daemon's web-intake job (ingests confirmed submissions and portal replies)."""
    return ingest_web_submissions(settings)
