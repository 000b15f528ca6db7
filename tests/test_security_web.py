# ruff: noqa: F811 - pytest fixtures imported from tests.web_support
"""Issue 10 (trust), the web side: sessions end with real tokens and cookies, login throttling cannot lock
the owner out, login CSRF, weak secrets, status links, and who grants skills."""

from __future__ import annotations

import base64
import datetime as dt
import os
import pathlib
import subprocess
import sys

import pytest
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token

from config import SettingsError, load_settings
from daemon.ingest import ingest
from models import Skill, User, utcnow
from models.links import StatusLink
from tests.conftest import make_settings
from tests.daemon_support import raw_email
from tests.web_support import PASSWORD, app, cookie_login, make_user  # noqa: F401
from webadmin import create_app
from webadmin.security import session_claims

ROOT = pathlib.Path(__file__).resolve().parent.parent
NEW_PASSWORD = "another-long-password-7"


def api_login(client, email: str, password: str = PASSWORD) -> tuple[str, str]:  # noqa: ANN001
    body = client.post("/api/auth/login", json={"email": email, "password": password}).get_json()
    return body["access_token"], body["refresh_token"]


def still_works(app, access: str, refresh: str, cookie: str) -> tuple[int, int, int]:  # noqa: ANN001
    """(GET /api/me with the access token, POST /api/auth/refresh, GET /queue with the page cookie)."""
    me = app.test_client().get("/api/me", headers={"Authorization": f"Bearer {access}"}).status_code
    renewed = app.test_client().post("/api/auth/refresh", headers={"Authorization": f"Bearer {refresh}"}).status_code
    page = app.test_client()
    page.set_cookie("access_token_cookie", cookie)
    return me, renewed, page.get("/queue").status_code


def session_of(app, email: str) -> tuple[str, str, str]:  # noqa: ANN001
    access, refresh = api_login(app.test_client(), email)
    browser = app.test_client()
    cookie_login(browser, email)
    return access, refresh, browser.get_cookie("access_token_cookie").value


@pytest.mark.parametrize("change", ["password reset by an admin", "role change", "deactivation"])
def test_credential_changes_end_every_token_and_cookie(app, db, change: str) -> None:
    make_user("admin@example.test", role="admin")
    target = make_user("mod@example.test")
    access, refresh, cookie = session_of(app, "mod@example.test")
    assert still_works(app, access, refresh, cookie) == (200, 200, 200)
    admin = app.test_client()
    csrf = cookie_login(admin, "admin@example.test")
    if change == "password reset by an admin":
        response = admin.post(
            f"/admin/users/edit/?id={target.id}",
            data={
                "email": target.email,
                "name": target.name,
                "role": "moderator",
                "active": "y",
                "skills_csv": "",
                "new_password": NEW_PASSWORD,
                "reason": "lost laptop",
                "csrf_token": csrf,
            },
        )
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        assert User.objects.get(id=target.id).check_password(NEW_PASSWORD)
    else:
        body = {"role": "admin"} if change == "role change" else {"active": False}
        admin_access, _ = api_login(app.test_client(), "admin@example.test")
        headers = {"Authorization": f"Bearer {admin_access}"}
        assert app.test_client().patch(f"/api/users/{target.id}", json=body, headers=headers).status_code == 200
    me, renewed, page = still_works(app, access, refresh, cookie)
    assert (me, renewed) == (401, 401) and page == 302
    if change != "deactivation":  # a fresh sign-in works as usual
        password = NEW_PASSWORD if change.startswith("password") else PASSWORD
        assert (
            app.test_client().post("/api/auth/login", json={"email": target.email, "password": password}).status_code
            == 200
        )


def test_absolute_session_lifetime_cannot_be_renewed_past(app, db, settings) -> None:
    user = make_user("mod@example.test")
    started = int((dt.datetime.now(dt.UTC) - dt.timedelta(hours=settings.session_max_hours, minutes=1)).timestamp())
    recent = int((dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).timestamp())
    with app.app_context():
        old_access = create_access_token(str(user.id), additional_claims=session_claims(user, started))
        old_refresh = create_refresh_token(str(user.id), additional_claims=session_claims(user, started))
        # a page cookie past half its life, from a sign-in an hour ago: renewed, keeping the sign-in time
        halfway = create_access_token(
            str(user.id), additional_claims=session_claims(user, recent), expires_delta=dt.timedelta(minutes=5)
        )
    assert still_works(app, old_access, old_refresh, old_access)[:2] == (401, 401)
    browser = app.test_client()
    browser.set_cookie("access_token_cookie", halfway)
    assert browser.get("/queue").status_code == 200
    renewed = browser.get_cookie("access_token_cookie").value
    assert renewed != halfway
    with app.app_context():
        claims = decode_token(renewed)
    assert claims["auth_time"] == recent and claims["jti"] == decode_token_claims(app, halfway)["jti"]
    # the same cookie from a sign-in past the lifetime is refused and not renewed
    expired = app.test_client()
    with app.app_context():
        stale = create_access_token(
            str(user.id), additional_claims=session_claims(user, started), expires_delta=dt.timedelta(minutes=5)
        )
    expired.set_cookie("access_token_cookie", stale)
    response = expired.get("/queue")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def decode_token_claims(app, token: str) -> dict:  # noqa: ANN001
    with app.app_context():
        return decode_token(token)


def test_session_lifetime_is_configurable(db, mail_server) -> None:
    settings = make_settings(db, mail_server, session_max_hours=1)
    app = create_app(settings)
    user = make_user("mod@example.test")
    two_hours_ago = int((dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).timestamp())
    with app.app_context():
        token = create_access_token(str(user.id), additional_claims=session_claims(user, two_hours_ago))
    assert app.test_client().get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert load_settings({"SECRET_KEY": "s" * 32, "JWT_SECRET_KEY": "j" * 32}, env_file=None).session_max_hours == 12


def test_failed_logins_elsewhere_do_not_lock_the_owner_out(db, mail_server) -> None:
    settings = make_settings(db, mail_server, login_account_delay_max_seconds=0.3)
    app = create_app(settings)
    make_user("owner@example.test")
    attacker, wrong = app.test_client(), {"email": "owner@example.test", "password": "wrong-guess-1"}
    codes = [
        attacker.post("/login", data=wrong, environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code for _ in range(12)
    ]
    assert codes[:10] == [401] * 10 and codes[10:] == [429, 429]
    owner = app.test_client()
    response = owner.post(
        "/login",
        data={"email": "owner@example.test", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "198.51.100.7"},
    )
    assert response.status_code == 302 and owner.get_cookie("access_token_cookie") is not None
    api = app.test_client().post(
        "/api/auth/login",
        json={"email": "owner@example.test", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "198.51.100.8"},
    )
    assert api.status_code == 200
    with app.test_request_context():
        from webadmin.security import account_delay

        assert 0 < account_delay("owner@example.test") <= 0.3  # failures slow the account down, capped


def test_login_form_refuses_a_cross_site_post(app, db) -> None:
    make_user("mod@example.test")
    client = app.test_client()
    form = {"email": "mod@example.test", "password": PASSWORD}
    cross_site = (
        {"Origin": "https://evil.example"},
        {"Referer": "https://evil.example/x"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "null"},  # e.g. a sandboxed frame on another site
    )
    for headers in cross_site:
        response = client.post("/login", data=form, headers=headers)
        assert response.status_code == 403 and client.get_cookie("access_token_cookie") is None
    # A browser on our login page: our pages send no referrer, so its Origin may be "null".
    page = client.get("/login")
    token = client.get_cookie("login_csrf", path="/login").value
    assert f'value="{token}"' in page.get_data(as_text=True)
    browser = client.post("/login", data={**form, "login_token": token}, headers={"Origin": "null"})
    assert browser.status_code == 302 and client.get_cookie("access_token_cookie") is not None
    same = app.test_client().post("/login", data=form, headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 302


@pytest.mark.parametrize("name", ["SECRET_KEY", "JWT_SECRET_KEY"])
def test_start_up_refuses_short_secrets(name: str) -> None:
    env = {"SECRET_KEY": "s" * 40, "JWT_SECRET_KEY": "j" * 40, name: "a" * 31}
    with pytest.raises(SettingsError, match=f"^{name}: must be at least 32 bytes") as info:
        load_settings(env, env_file=None)
    assert "\n" not in str(info.value)
    result = subprocess.run(
        [sys.executable, str(ROOT / "run_web.py")],
        env={"PATH": os.environ.get("PATH", ""), **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert f"{name}: must be at least 32 bytes" in result.stderr


def test_status_links_are_opaque_short_lived_and_revocable(app, db, settings, mail) -> None:
    created = ingest(raw_email(sender="ann.customer@example.test", subject="Printer on fire"), settings)
    [ack] = mail.wait_for_sink(1)
    link = next(line for line in ack.get_content().splitlines() if "/status/" in line).strip()
    token = link.rsplit("/", 1)[1]
    padded = token + "=" * (-len(token) % 4)
    assert b"ann" not in base64.urlsafe_b64decode(padded) and "ann" not in token
    stored = StatusLink.objects.get(ticket_number=created.ticket_number)
    assert stored.key != token and stored.expires_at - stored.created_at == dt.timedelta(days=30)
    client = app.test_client()
    assert client.get(f"/status/{token}").status_code == 200
    moderator = make_user("admin@example.test", role="admin")
    agent = app.test_client()
    csrf = cookie_login(agent, moderator.email)
    revoked = agent.post(f"/tickets/{created.ticket_number}/status-links/revoke", data={"csrf_token": csrf})
    assert revoked.status_code == 302
    gone = client.get(f"/status/{token}")
    assert gone.status_code == 410 and "Printer on fire" not in gone.get_data(as_text=True)


def test_status_link_lifetime_is_configurable(db, mail) -> None:
    settings = make_settings(db, mail, status_link_days=3)
    created = ingest(raw_email(subject="Short link"), settings)
    stored = StatusLink.objects.get(ticket_number=created.ticket_number)
    assert stored.expires_at - stored.created_at == dt.timedelta(days=3)
    StatusLink.objects(ticket_number=created.ticket_number).update(set__expires_at=utcnow())
    app = create_app(settings)
    token = next(line for line in mail.wait_for_sink(1)[0].get_content().splitlines() if "/status/" in line)
    assert app.test_client().get("/status/" + token.strip().rsplit("/", 1)[1]).status_code == 410


def test_status_tokens_are_not_written_to_access_logs_in_full() -> None:
    from gunicorn.config import Config

    from webadmin.status.access_log import RedactingLogger

    token = "Zq3xT7pLmN0vBc4dEf5gHi6jKl8mNo9pQr1sTu2vWx3"
    logger = RedactingLogger(Config())
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/status/{token}",
        "PATH_INFO": f"/status/{token}",
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
    }

    class Response:
        status = "200 OK"
        sent = 10
        headers: list = []
        response_length = 10

    class Request:
        headers: list = []

    atoms = logger.atoms(Response(), Request(), environ, dt.timedelta(seconds=0.01))
    line = logger.cfg.access_log_format % atoms
    assert "/status/Zq3xT7" in line and token not in line


def test_moderators_cannot_grant_themselves_skills(app, db) -> None:
    for name in ("vpn", "payments"):
        Skill(name=name).save()
    make_user("admin@example.test", role="admin")
    moderator = make_user("mod@example.test", skills=("vpn",))
    page = app.test_client()
    csrf = cookie_login(page, moderator.email)
    assert page.post("/me/skills", data={"skills": ["vpn", "payments"], "csrf_token": csrf}).status_code == 403
    access, _ = api_login(app.test_client(), moderator.email)
    headers = {"Authorization": f"Bearer {access}"}
    assert app.test_client().patch("/api/me/skills", json={"skills": ["payments"]}, headers=headers).status_code == 403
    assert User.objects.get(id=moderator.id).skills == ["vpn"]
    admin_access, _ = api_login(app.test_client(), "admin@example.test")
    granted = app.test_client().patch(
        f"/api/users/{moderator.id}",
        json={"skills": ["vpn", "payments"]},
        headers={"Authorization": f"Bearer {admin_access}"},
    )
    assert granted.status_code == 200 and User.objects.get(id=moderator.id).skills == ["vpn", "payments"]
