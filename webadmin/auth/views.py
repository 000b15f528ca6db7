"""The login form sets HttpOnly JWT cookies; logout revokes the access token."""

from __future__ import annotations

import logging
from typing import cast
from urllib.parse import urlsplit

import flask
from flask import current_app, redirect, render_template, request, url_for
from flask_jwt_extended import get_jwt, set_access_cookies, unset_jwt_cookies, verify_jwt_in_request
from werkzeug.wrappers import Response

from webadmin.auth import bp
from webadmin.security import (
    BAD_CREDENTIALS,
    LOGIN_CSRF_COOKIE,
    authenticate,
    check_login_rate,
    issue_tokens,
    login_from_this_site,
    new_login_token,
    revoke,
)

logger = logging.getLogger(__name__)


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths, so the login form is not an open redirect."""
    if not target:
        return url_for("moderator.queue")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("moderator.queue")
    return target


@bp.get("/login")
def login_page() -> Response:
    token = new_login_token()
    response = flask.make_response(
        render_template("login.html", next=request.args.get("next", ""), error=None, login_token=token)
    )
    secure = current_app.config.get("JWT_COOKIE_SECURE", False)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="Strict", secure=secure, path="/login")
    return response


@bp.post("/login")
def login_submit() -> tuple[str, int] | Response:
    if not login_from_this_site():  # login CSRF: another site must not sign a browser into our app
        logger.info("cross-site login form refused")
        return render_template("error.html", code=403, message="Sign in from this site's own login page."), 403
    email = request.form.get("email", "")[:320]
    check_login_rate(email)
    password = request.form.get("password", "")[:1024]
    user = authenticate(email, password)
    if user is None:
        logger.info("failed page login")
        page = render_template(
            "login.html",
            next=request.form.get("next", ""),
            error=BAD_CREDENTIALS,
            login_token=request.cookies.get(LOGIN_CSRF_COOKIE, ""),
        )
        return page, 401
    access, _refresh = issue_tokens(user)
    target = _safe_next(request.form.get("next"))
    if user.role == "admin" and target == url_for("moderator.queue"):
        target = url_for("dashboard.overview")
    # At runtime flask.redirect builds the app's response class; flask-jwt-extended wants that type.
    response = cast(flask.Response, redirect(target))
    set_access_cookies(response, access)
    return response


@bp.post("/logout")
def logout() -> Response:
    verify_jwt_in_request(optional=True)
    claims = get_jwt()
    if claims:
        revoke(claims)
    response = cast(flask.Response, redirect(url_for("auth.login_page")))
    unset_jwt_cookies(response)
    return response
