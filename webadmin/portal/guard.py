"""What every portal page shares: the anonymous forms' CSRF token, the customer guard, signing a customer in."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from typing import Any, cast

import flask
from flask import current_app, redirect, render_template, request, url_for
from flask_jwt_extended import current_user, set_access_cookies, verify_jwt_in_request
from mongoengine import NotUniqueError
from werkzeug.exceptions import Forbidden
from werkzeug.wrappers import Response

from config import Settings
from models import User
from webadmin.intake import client_key
from webadmin.security import issue_tokens

FORM_COOKIE = "portal_form"
FORM_FIELD = "form_token"


def settings() -> Settings:
    return current_app.extensions["settings"]


def this_client() -> str:
    """The hashed client address (per-client limits; ProxyFix sets remote_addr behind a proxy)."""
    return client_key(request.remote_addr)


def form_token() -> str:
    """The anonymous forms' double-submit token: the cookie's value, or a new one `with_form_cookie` sets."""
    token = request.cookies.get(FORM_COOKIE, "")
    if len(token) < 20:
        token = flask.g.get("new_form_token") or secrets.token_urlsafe(24)
        flask.g.new_form_token = token
    return token


def with_form_cookie(response: Response) -> Response:
    token = flask.g.get("new_form_token")
    if token:
        secure = current_app.config.get("JWT_COOKIE_SECURE", False)
        response.set_cookie(FORM_COOKIE, token, httponly=True, samesite="Strict", secure=secure, path="/portal")
    return response


def page(template: str, status: int = 200, **context: Any) -> Response:
    """A rendered portal page (with the form cookie when the page set a new one)."""
    response = flask.make_response(render_template(template, form_token=form_token, **context), status)
    return with_form_cookie(response)


def outcome(title: str, text: str, status: int = 200, **context: Any) -> Response:
    """The page for one outcome (sent, confirmed, expired, too many...)."""
    return page("portal/outcome.html", status, title=title, text=text, **context)


def anonymous_form_ok() -> bool:
    """A POST from one of our own anonymous forms: not cross-site, and its token matches its cookie."""
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return False
    sent, cookie = request.form.get(FORM_FIELD, ""), request.cookies.get(FORM_COOKIE, "")
    return bool(sent) and bool(cookie) and secrets.compare_digest(sent, cookie)


def refused_form() -> Response:
    text = "The form was missing its security token. Reload the page and send it again."
    return outcome("Please try again", text, 403)


def signed_in_customer() -> User | None:
    """The signed-in customer (role user), or None; raises for a cookie POST without its CSRF token."""
    verify_jwt_in_request(optional=True)
    user = (flask.g.get("_jwt_extended_jwt_user") or {}).get("loaded_user")
    return cast(User | None, user if user is not None and user.role == "user" else None)


def customer_required(view: Callable) -> Callable:
    """Portal pages: a signed-in customer; anonymous -> the sign-in page, staff -> 403."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        verify_jwt_in_request(optional=True)
        if not flask.g.get("_jwt_extended_jwt_user", {}).get("loaded_user"):
            return redirect(url_for("portal.sign_in"))
        if current_user.role != "user":
            raise Forbidden("The portal is for customers; staff use the queue.")
        return view(*args, **kwargs)

    return wrapper


def customer_for(address: str, name: str = "") -> User:
    """The customer's user (role user), created on first contact, as ingestion does."""
    user = User.by_email(address)
    if user is not None:
        return user
    try:
        return User(email=address, name=name[:200], role="user").save(force_insert=True)
    except NotUniqueError:  # created meanwhile (by the daemon or another request)
        return User.objects(email=address).get()


def start_session(user: User, response: Response) -> bool:
    """Give `response` a portal session (the app's JWT cookie) for a customer; False for anyone else: an
    email link never signs staff in (their accounts need their password)."""
    if user.role != "user" or not user.active:
        return False
    access, _refresh = issue_tokens(user)
    set_access_cookies(cast(flask.Response, response), access)
    return True
