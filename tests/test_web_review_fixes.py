"""Regressions found in a review of the web panel."""

from __future__ import annotations

import datetime as dt
import time

from flask_jwt_extended import create_access_token, decode_token

from models import Ticket, User
from tests.web_support import PASSWORD, app, bearer, cookie_login, make_ticket, make_user  # noqa: F401


def test_unknown_email_login_costs_a_password_check(app):  # noqa: F811
    """Regression: an unknown email answered in ~2 ms and a known one in ~140 ms (account enumeration)."""
    make_user("known@example.test", "admin")
    client = app.test_client()

    def timed(email: str) -> float:
        started = time.perf_counter()
        response = client.post("/api/auth/login", json={"email": email, "password": "wrong password 123"})
        assert response.status_code == 401
        return time.perf_counter() - started

    timed("known@example.test")  # warm-up
    known = min(timed("known@example.test") for _ in range(3))
    unknown = min(timed("nobody@example.test") for _ in range(3))
    assert unknown > known / 3, (known, unknown)


def test_queue_pager_ignores_unknown_parameters(app):  # noqa: F811
    """Regression: /queue?endpoint=x crashed url_for in the pager (500)."""
    make_user("admin@example.test", "admin")
    for _ in range(7):
        make_ticket()
    client = app.test_client()
    cookie_login(client, "admin@example.test")
    response = client.get("/queue?per_page=5&endpoint=x&_external=1&status=active")
    assert response.status_code == 200
    assert b"endpoint=x" not in response.data


def test_renewed_cookie_keeps_forms_working_and_logout_revokes_it(app):  # noqa: F811
    """Regression: the silent renewal changed the CSRF value (open forms got 403) and the jti (logout left
    the earlier token valid)."""
    moderator = make_user("mo@example.test", "moderator")
    ticket = make_ticket(assignee=moderator)
    client = app.test_client()
    with app.app_context():
        half_spent = create_access_token(
            str(moderator.id), additional_claims={"role": "moderator"}, expires_delta=dt.timedelta(minutes=2)
        )
    client.set_cookie("access_token_cookie", half_spent)
    client.get(f"/tickets/{ticket.number}")  # renews the cookie
    with app.app_context():
        old_claims = decode_token(half_spent)
        new_claims = decode_token(client.get_cookie("access_token_cookie").value)
    assert new_claims["csrf"] == old_claims["csrf"]
    assert new_claims["jti"] == old_claims["jti"]
    response = client.post(f"/tickets/{ticket.number}/note", data={"text": "checked", "csrf_token": old_claims["csrf"]})
    assert response.status_code in (302, 303)
    client.post("/logout", data={"csrf_token": old_claims["csrf"]})
    stale = app.test_client()
    stale.set_cookie("access_token_cookie", half_spent)
    assert stale.get("/queue").status_code in (302, 401)


def test_demoted_admin_loses_their_tickets(app):  # noqa: F811
    """Regression: only a moderator's demotion rerouted open tickets; an admin demoted to user kept them."""
    boss = make_user("boss@example.test", "admin")
    other = make_user("other@example.test", "admin")
    make_ticket(assignee=other)
    response = app.test_client().patch(
        f"/api/users/{other.id}", json={"role": "user", "reason": "left the team"}, headers=bearer(app, boss)
    )
    assert response.status_code == 200, response.get_json()
    assert Ticket.objects.get(number=1).assignee != User.objects.get(id=other.id)


def test_login_guesses_from_many_addresses_slow_the_account_but_never_lock_it(app):  # noqa: F811
    """Guessing one account's password from many addresses is slowed per account (a delay growing with the
    failures), never refused: a hard per-account lock let anyone lock the owner out (issue 10, item 8)."""
    from webadmin.security import account_delay

    make_user("target@example.test", "admin")
    client = app.test_client()
    codes = [
        client.post(
            "/api/auth/login",
            json={"email": "target@example.test", "password": f"guess number {i}"},
            environ_base={"REMOTE_ADDR": f"10.0.0.{i}"},
        ).status_code
        for i in range(12)
    ]
    assert codes == [401] * 12
    with app.test_request_context():
        assert account_delay("target@example.test") > 0 and account_delay("someone@example.test") == 0
    owner = client.post(
        "/api/auth/login",
        json={"email": "target@example.test", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.0.2.2"},
    )
    assert owner.status_code == 200
    other = client.post(
        "/api/auth/login",
        json={"email": "someone@example.test", "password": "whatever pw"},
        environ_base={"REMOTE_ADDR": "10.0.1.1"},
    )
    assert other.status_code == 401
