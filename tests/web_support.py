"""Helpers and fixtures for the web panel tests: an app on the test database, people, tickets, tokens,
and a served app on 127.0.0.1 for browsers and HTTP clients."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from flask import Flask
from flask_jwt_extended import create_access_token
from werkzeug.serving import make_server

from config import Settings
from models import Ticket, TicketMessage, User, next_ticket_number, utcnow
from models.links import create_status_token
from webadmin import create_app
from webadmin.security import session_claims

PASSWORD = "correct-horse-battery"


@pytest.fixture()
def app(settings: Settings) -> Flask:
    app = create_app(settings)
    app.config["TESTING"] = True
    return app


def make_user(
    email: str, role: str = "moderator", skills: tuple[str, ...] = (), password: str | None = PASSWORD
) -> User:
    user = User(email=email, role=role, skills=list(skills), name=email.split("@")[0].title())
    if password:
        user.set_password(password)
    return user.save()


def make_ticket(
    subject: str = "VPN drops every hour",
    requester: str = "customer@example.test",
    assignee: User | None = None,
    required_skills: tuple[str, ...] = (),
    body: str = "Hello, the VPN drops every hour.",
    html: str = "",
    **fields: object,
) -> Ticket:
    number = next_ticket_number()
    message_id = f"<customer-{number}@customer.example>"
    ticket = Ticket(
        number=number,
        subject=subject,
        requester_email=requester,
        participants=[requester],
        assignee=assignee,
        required_skills=list(required_skills),
        source_message_id=message_id,
        status=fields.pop("status", "open"),
        message_count=1,
        **fields,
    ).save()
    TicketMessage(
        ticket=ticket,
        ticket_number=number,
        kind="inbound",
        message_id=message_id,
        from_address=requester,
        to=["support@example.test"],
        subject=subject,
        text=body,
        new_text=body,
        html=html,
        sent_at=utcnow(),
    ).save()
    return ticket


def bearer(app: Flask, user: User) -> dict[str, str]:
    with app.app_context():
        token = create_access_token(str(user.id), additional_claims=session_claims(user))
    return {"Authorization": f"Bearer {token}"}


def status_link_token(settings: Settings, ticket: Ticket) -> str:
    return create_status_token(ticket.id, ticket.number, settings.status_link_days)


def cookie_login(client, email: str, password: str = PASSWORD) -> str:  # noqa: ANN001 - a FlaskClient
    """Sign in through the login form; returns the CSRF value pages must send back."""
    response = client.post("/login", data={"email": email, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)
    cookie = client.get_cookie("csrf_access_token")
    assert cookie is not None
    return cookie.value


@contextmanager
def served(app: Flask) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 with a real WSGI server in a thread; yields the base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)
