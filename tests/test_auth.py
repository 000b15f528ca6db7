# ruff: noqa: F811 - pytest fixtures imported from tests.web_support
"""Login, tokens, revocation, deactivation, rate limiting and CSRF for cookie sessions."""

from __future__ import annotations

import datetime as dt

from flask_jwt_extended import create_access_token

from models import RevokedToken, TicketMessage, User
from tests.conftest import make_settings
from tests.web_support import PASSWORD, app, bearer, cookie_login, make_ticket, make_user  # noqa: F401
from webadmin import create_app


def _login(client, email: str, password: str = PASSWORD):  # noqa: ANN001,ANN202
    return client.post("/api/auth/login", json={"email": email, "password": password})


def test_api_login_returns_tokens_that_identify_the_user(app, db) -> None:
    make_user("mod@example.test", skills=("vpn",))
    client = app.test_client()
    tokens = _login(client, "MOD@example.test ").get_json()
    me = client.get("/api/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200
    assert me.get_json()["email"] == "mod@example.test"
    assert me.get_json()["skills"] == ["vpn"]


def test_unknown_email_and_wrong_password_get_the_same_answer(app, db) -> None:
    make_user("mod@example.test")
    client = app.test_client()
    wrong_password = _login(client, "mod@example.test", "not-the-password")
    unknown = _login(client, "nobody@example.test", "not-the-password")
    assert wrong_password.status_code == unknown.status_code == 401
    assert wrong_password.get_json() == unknown.get_json()
    page_wrong = client.post("/login", data={"email": "mod@example.test", "password": "nope-nope-nope"})
    page_unknown = client.post("/login", data={"email": "x@example.test", "password": "nope-nope-nope"})
    assert page_wrong.status_code == page_unknown.status_code == 401
    assert page_wrong.get_data() == page_unknown.get_data()


def test_requester_without_password_cannot_log_in(app, db) -> None:
    make_user("customer@example.test", role="user", password=None)
    assert _login(app.test_client(), "customer@example.test", "").status_code == 422
    assert _login(app.test_client(), "customer@example.test", "anything-at-all").status_code == 401


def test_deactivated_user_is_refused_on_the_next_request(app, db) -> None:
    user = make_user("mod@example.test")
    headers = bearer(app, user)
    client = app.test_client()
    assert client.get("/api/me", headers=headers).status_code == 200
    User.objects(id=user.id).update_one(set__active=False)
    response = client.get("/api/me", headers=headers)
    assert response.status_code == 401
    assert "deactivated" in response.get_json()["message"]
    assert _login(client, "mod@example.test").status_code == 401


def test_logout_revokes_access_and_refresh_tokens(app, db) -> None:
    make_user("mod@example.test")
    client = app.test_client()
    tokens = _login(client, "mod@example.test").get_json()
    access = {"Authorization": f"Bearer {tokens['access_token']}"}
    refresh = {"Authorization": f"Bearer {tokens['refresh_token']}"}
    assert client.post("/api/auth/refresh", headers=refresh).status_code == 200
    out = client.post("/api/auth/logout", headers=access, json={"refresh_token": tokens["refresh_token"]})
    assert out.status_code == 200
    assert RevokedToken.objects.count() == 2
    assert client.get("/api/me", headers=access).status_code == 401
    assert client.post("/api/auth/refresh", headers=refresh).status_code == 401


def test_access_token_is_not_a_refresh_token_and_expired_tokens_fail(app, db) -> None:
    user = make_user("mod@example.test")
    client = app.test_client()
    assert client.post("/api/auth/refresh", headers=bearer(app, user)).status_code == 401
    with app.app_context():
        stale = create_access_token(str(user.id), expires_delta=dt.timedelta(seconds=-5))
    response = client.get("/api/me", headers={"Authorization": f"Bearer {stale}"})
    assert response.status_code == 401
    assert response.get_json()["message"] == "Token has expired"
    garbage = client.get("/api/me", headers={"Authorization": "Bearer not.a.jwt"})
    assert garbage.status_code == 401
    assert garbage.is_json


def test_login_attempts_are_rate_limited(db, mail_server) -> None:
    app = create_app(make_settings(db, mail_server, login_rate_limit="3 per minute"))
    make_user("mod@example.test")
    client = app.test_client()
    codes = [_login(client, "mod@example.test", "wrong-password-x").status_code for _ in range(3)]
    blocked = _login(client, "mod@example.test")  # even the right password waits out the window
    assert codes == [401, 401, 401]
    assert blocked.status_code == 429
    assert blocked.is_json
    assert client.post("/login", data={"email": "mod@example.test", "password": PASSWORD}).status_code == 429


def test_page_login_sets_httponly_cookie_and_rejects_open_redirects(app, db) -> None:
    make_user("mod@example.test")
    client = app.test_client()
    response = client.post(
        "/login", data={"email": "mod@example.test", "password": PASSWORD, "next": "//evil.example/steal"}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/queue"
    access_cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("access_token_cookie="))
    assert "HttpOnly" in access_cookie
    assert "SameSite=Lax" in access_cookie


def test_cookie_post_without_csrf_token_is_refused(app, db) -> None:
    moderator = make_user("mod@example.test", skills=("vpn",))
    ticket = make_ticket(assignee=moderator)
    client = app.test_client()
    csrf = cookie_login(client, "mod@example.test")
    refused = client.post(f"/tickets/{ticket.number}/note", data={"text": "sneaky"})
    assert refused.status_code == 403
    forged = client.post(f"/tickets/{ticket.number}/note", data={"text": "sneaky", "csrf_token": "forged"})
    assert forged.status_code == 403
    api_refused = client.post(f"/api/tickets/{ticket.number}/notes", json={"text": "sneaky"})
    assert api_refused.status_code == 401
    assert TicketMessage.objects(kind="note").count() == 0
    accepted = client.post(f"/tickets/{ticket.number}/note", data={"text": "legit", "csrf_token": csrf})
    assert accepted.status_code == 302
    assert TicketMessage.objects(kind="note").count() == 1


def test_page_logout_revokes_the_cookie_token(app, db) -> None:
    make_user("mod@example.test")
    client = app.test_client()
    csrf = cookie_login(client, "mod@example.test")
    stolen = client.get_cookie("access_token_cookie").value
    assert client.post("/logout", data={"csrf_token": csrf}).status_code == 302
    thief = app.test_client()
    thief.set_cookie("access_token_cookie", stolen)
    response = thief.get("/queue")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
