"""JWT wiring: identity, user lookup, blocklist, error responses, and role guards for pages and API."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Flask,
    Response,
    current_app,
    g,
    has_request_context,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
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
from limits import parse, parse_many
from mongoengine.errors import NotUniqueError, ValidationError
from werkzeug.exceptions import Forbidden, TooManyRequests

from models import RevokedToken, User, utcnow
from webadmin.extensions import jwt

logger = logging.getLogger(__name__)

STAFF_ROLES = ("moderator", "admin")
# One message for an unknown email and a wrong password, so login does not reveal who has an account.
BAD_CREDENTIALS = "Invalid email or password."
_FAILURE_WINDOW = parse("100000 per 15 minutes")  # counts an account's failed logins (from anywhere)


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
        record_login_failure(email)
        return None
    if not user.check_password(password) or not user.active:
        record_login_failure(email)
        return None
    return user


def check_login_rate(email: str = "") -> None:
    """Count a login attempt; 429 once `LOGIN_RATE_LIMIT` is exceeded from this client address, or for
    this account from this address. Never a lock on the account as such (that would let anyone lock
    the owner out): failures from everywhere only slow the account's attempts down (account_delay)."""
    limiter = current_app.extensions["login_limiter"]
    address = get_remote_address()
    account = _account_key(email)
    keys = [("login", address)]
    if account:
        keys.append(("login-account-address", f"{account}|{address}"))
    for item in parse_many(current_app.extensions["settings"].login_rate_limit):
        for scope, key in keys:
            if not limiter.limiter.hit(item, scope, key):
                raise TooManyRequests("Too many login attempts; please wait a minute and try again.")
    delay = account_delay(email)
    if delay > 0:
        time.sleep(delay)


def account_delay(email: str) -> float:
    """Seconds to wait before checking a password for this account: 0.1 s per recent failure beyond the
    first five (from any address), up to LOGIN_ACCOUNT_DELAY_MAX_SECONDS."""
    account = _account_key(email)
    if not account:
        return 0.0
    limiter = current_app.extensions["login_limiter"].limiter
    stats = limiter.get_window_stats(_FAILURE_WINDOW, "login-failures", account)
    failures = _FAILURE_WINDOW.amount - stats.remaining
    ceiling = current_app.extensions["settings"].login_account_delay_max_seconds
    return min(ceiling, 0.1 * max(0, failures - 5))


def record_login_failure(email: str) -> None:
    account = _account_key(email)
    if account and has_request_context() and "login_limiter" in current_app.extensions:
        current_app.extensions["login_limiter"].limiter.hit(_FAILURE_WINDOW, "login-failures", account)


def _account_key(email: str) -> str:
    return (email or "").strip().lower()[:320]


LOGIN_CSRF_COOKIE = "login_csrf"


def login_from_this_site() -> bool:
    """False for a cross-site login form (login CSRF). A browser's Sec-Fetch-Site decides when sent;
    else the form's token must match its cookie (set with the login page), or Origin/Referer must name
    this site. Our pages send no referrer, so a browser's own Origin can be "null": only the token passes
    then. Clients that send none of these headers (scripts, tests) are not browsers being abused."""
    fetch_site = request.headers.get("Sec-Fetch-Site", "")
    if fetch_site:
        return fetch_site in ("same-origin", "none")
    form_token = request.form.get("login_token", "")
    cookie_token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if form_token and cookie_token and secrets.compare_digest(form_token, cookie_token):
        return True
    source = request.headers.get("Origin") or request.headers.get("Referer") or ""
    if source == "null":
        return False
    if not source:
        return True
    allowed = {request.host.lower(), urlsplit(current_app.extensions["settings"].app_url).netloc.lower()}
    return urlsplit(source).netloc.lower() in allowed


def new_login_token() -> str:
    return secrets.token_urlsafe(24)


def session_claims(user: User, auth_time: int | None = None) -> dict[str, Any]:
    """Claims every token of a session carries: role, the user's token version, and the sign-in time
    (kept through renewals, so SESSION_MAX_HOURS counts from the password, not from the last renewal)."""
    started = int(auth_time if auth_time is not None else dt.datetime.now(dt.UTC).timestamp())
    return {"role": user.role, "tv": user.token_version or 0, "auth_time": started}


def issue_tokens(user: User) -> tuple[str, str]:
    claims = session_claims(user)
    identity = str(user.id)
    return create_access_token(identity, additional_claims=claims), create_refresh_token(
        identity, additional_claims=claims
    )


def renewed_access_token(user: User, claims: dict[str, Any]) -> str:
    """A new access token within the same session (from a refresh token's claims)."""
    return create_access_token(str(user.id), additional_claims=session_claims(user, _auth_time(claims)))


def _auth_time(claims: dict[str, Any]) -> int:
    return int(claims.get("auth_time") or claims.get("iat") or 0)


def session_is_current(user: User, claims: dict[str, Any]) -> bool:
    """The token belongs to the user's current token version and its session is within its lifetime."""
    if int(claims.get("tv", 0)) != (user.token_version or 0):
        return False
    lifetime = current_app.extensions["settings"].session_max_hours * 3600
    return dt.datetime.now(dt.UTC).timestamp() < _auth_time(claims) + lifetime


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
        renewed_claims = {**session_claims(user, _auth_time(claims)), "jti": claims["jti"], "csrf": claims["csrf"]}
        set_access_cookies(response, create_access_token(str(user.id), additional_claims=renewed_claims))
    return response


@jwt.user_lookup_loader
def _load_user(_header: dict, claims: dict) -> User | None:
    try:
        user = User.objects(id=claims["sub"]).first()
    except ValidationError:
        return None
    # A deactivated user is refused on the very next request, whatever their token says; so is a token
    # from before a password/role change (token version) or from a session past its absolute lifetime.
    return user if user is not None and user.active and session_is_current(user, claims) else None


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
