"""JWT wiring: identity, user lookup, blocklist, error responses, and role guards for pages and API."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app, g, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_jwt_extended import (
    create_access_token,
    create_refresh_token,
    current_user,
    get_jwt,
    set_access_cookies,
    verify_jwt_in_request,
)
from flask_limiter.util import get_remote_address
from limits import parse_many
from mongoengine.errors import NotUniqueError, ValidationError
from werkzeug.exceptions import Forbidden, TooManyRequests

from models import RevokedToken, User, utcnow
from webadmin.extensions import jwt

logger = logging.getLogger(__name__)

STAFF_ROLES = ("moderator", "admin")
# One message for an unknown email and a wrong password, so login does not reveal who has an account.
BAD_CREDENTIALS = "Invalid email or password."


def is_api_request() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def configure_jwt(app: Flask, access_minutes: int, refresh_hours: int, secure_cookies: bool) -> None:
    app.config.update(
        JWT_TOKEN_LOCATION=["headers", "cookies"],
        JWT_ACCESS_TOKEN_EXPIRES=dt.timedelta(minutes=access_minutes),
        JWT_REFRESH_TOKEN_EXPIRES=dt.timedelta(hours=refresh_hours),
        JWT_COOKIE_SECURE=secure_cookies,
        JWT_COOKIE_SAMESITE="Lax",
        JWT_COOKIE_CSRF_PROTECT=True,
        JWT_CSRF_CHECK_FORM=True,
        JWT_CSRF_IN_COOKIES=True,
        JWT_REFRESH_COOKIE_PATH="/api/auth/refresh",
        JWT_SESSION_COOKIE=True,
    )
    jwt.init_app(app)
    app.jinja_env.globals["csrf_token"] = page_csrf_token
    app.jinja_env.globals["viewer"] = current_viewer
    app.after_request(refresh_expiring_cookie)


def authenticate(email: str, password: str) -> User | None:
    """The active staff user with this email and password, else None (same outcome for every failure)."""
    user = User.by_email(email) if "@" in email else None
    if user is None:
        User().check_password(password)  # spend comparable time when the email is unknown
        return None
    if not user.check_password(password) or not user.active:
        return None
    return user


def check_login_rate(email: str = "") -> None:
    """Count a login attempt from this address and for this account; 429 once `LOGIN_RATE_LIMIT` is
    exceeded for either (so neither one address nor many addresses can guess one account's password)."""
    limiter = current_app.extensions["login_limiter"]
    keys = [("login", get_remote_address())]
    if email:
        keys.append(("login-account", email.strip().lower()[:320]))
    for item in parse_many(current_app.extensions["settings"].login_rate_limit):
        for scope, key in keys:
            if not limiter.limiter.hit(item, scope, key):
                raise TooManyRequests("Too many login attempts; please wait a minute and try again.")


def issue_tokens(user: User) -> tuple[str, str]:
    claims = {"role": user.role}
    identity = str(user.id)
    return create_access_token(identity, additional_claims=claims), create_refresh_token(
        identity, additional_claims=claims
    )


def revoke(claims: dict[str, Any]) -> None:
    expires = dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC).replace(tzinfo=None)
    try:
        RevokedToken(jti=claims["jti"], expires_at=expires, revoked_at=utcnow()).save(force_insert=True)
    except NotUniqueError:
        pass  # already revoked


def page_csrf_token() -> str:
    """The double-submit CSRF value of the current cookie session, for hidden form fields."""
    claims = g.get("_jwt_extended_jwt")
    if claims is None:
        try:
            verify_jwt_in_request(optional=True)
        except Exception:  # rendering a page must not fail because the token is bad
            return ""
        claims = get_jwt()
    return claims.get("csrf", "")


def refresh_expiring_cookie(response: Response) -> Response:
    """Implicit refresh for pages: renew the access cookie when it passed half its lifetime."""
    if is_api_request() or g.get("_jwt_extended_jwt_location") != "cookies":
        return response
    claims = g.get("_jwt_extended_jwt")
    if not claims or claims.get("type") != "access" or not g.get("_jwt_extended_jwt_user", {}).get("loaded_user"):
        return response
    lifetime = current_app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds()
    remaining = claims["exp"] - dt.datetime.now(dt.UTC).timestamp()
    if 0 < remaining < lifetime / 2:
        user = g._jwt_extended_jwt_user["loaded_user"]
        # Keep the session's jti (so logout revokes every renewal) and its CSRF value (so forms already
        # rendered with it still submit).
        renewed_claims = {"role": user.role, "jti": claims["jti"], "csrf": claims["csrf"]}
        set_access_cookies(response, create_access_token(str(user.id), additional_claims=renewed_claims))
    return response


@jwt.user_lookup_loader
def _load_user(_header: dict, claims: dict) -> User | None:
    try:
        user = User.objects(id=claims["sub"]).first()
    except ValidationError:
        return None
    # A deactivated user is refused on the very next request, whatever their token says.
    return user if user is not None and user.active else None


@jwt.token_in_blocklist_loader
def _is_revoked(_header: dict, claims: dict) -> bool:
    return RevokedToken.objects(jti=claims["jti"]).first() is not None


def _auth_failure(message: str, status: int = 401) -> ResponseReturnValue:
    if is_api_request():
        return jsonify(code=status, status="Unauthorized" if status == 401 else "Forbidden", message=message), status
    if "CSRF" in message:
        return render_template("error.html", code=403, message="The form was missing its security token."), 403
    return redirect(url_for("auth.login_page", next=request.full_path.rstrip("?")))


@jwt.unauthorized_loader
def _unauthorized(message: str) -> ResponseReturnValue:
    return _auth_failure(message)


@jwt.invalid_token_loader
def _invalid(message: str) -> ResponseReturnValue:
    return _auth_failure(f"Invalid token: {message}")


@jwt.expired_token_loader
def _expired(_header: dict, _claims: dict) -> ResponseReturnValue:
    return _auth_failure("Token has expired")


@jwt.revoked_token_loader
def _revoked(_header: dict, _claims: dict) -> ResponseReturnValue:
    return _auth_failure("Token has been revoked")


@jwt.user_lookup_error_loader
def _lookup_failed(_header: dict, _claims: dict) -> ResponseReturnValue:
    return _auth_failure("Account is unknown or deactivated")


def require_roles(*roles: str) -> Callable:
    """Guard a view: a valid access token (header or cookie) whose user has one of `roles`."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            verify_jwt_in_request()
            if current_user.role not in roles:
                raise Forbidden("Your role does not allow this.")
            return view(*args, **kwargs)

        return wrapper

    return decorator


staff_required = require_roles(*STAFF_ROLES)
admin_required = require_roles("admin")
any_user_required = require_roles("user", *STAFF_ROLES)


def current_viewer() -> User | None:
    """The signed-in user for templates, or None (never raises: error pages use it too)."""
    loaded = g.get("_jwt_extended_jwt_user")
    if loaded is None:
        try:
            verify_jwt_in_request(optional=True)
        except Exception:  # an error page must render even when the token is bad
            return None
        loaded = g.get("_jwt_extended_jwt_user")
    return (loaded or {}).get("loaded_user")
