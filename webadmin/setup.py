"""Wire the web app: JWT, rate limits, the API with its OpenAPI document, blueprints, Flask-Admin."""

from __future__ import annotations

import secrets

from flask import Flask, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from werkzeug.wrappers import Response

from config import Settings
from webadmin.errors import HelpdeskApi, register_error_handlers
from webadmin.security import configure_jwt, is_api_request

# Strict for our own pages: no script at all, no remote content (email HTML is shown inert).
PAGE_CSP = (
    "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# The queue loads its counts with one script of ours (webadmin/static/queue.js); it shows no email content.
QUEUE_CSP = PAGE_CSP.replace("script-src 'none'", "script-src 'self'")
# Flask-Admin ships inline scripts; they run only with this request's nonce.
ADMIN_CSP = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def init_web(app: Flask, settings: Settings) -> None:
    app.config.update(
        API_TITLE="Helpdesk API",
        API_VERSION="1.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "components": {
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                    "apiKey": {"type": "http", "scheme": "bearer", "bearerFormat": "hdk_ API key (POST /api/tickets)"},
                }
            }
        },
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        TEMPLATES_AUTO_RELOAD=False,
    )
    configure_jwt(app, settings.jwt_access_minutes, settings.jwt_refresh_hours, settings.app_url.startswith("https://"))
    api = HelpdeskApi(app)
    app.extensions["smorest_api"] = api
    register_error_handlers(app)

    from webadmin.api import bp as api_bp
    from webadmin.auth import bp as auth_bp
    from webadmin.dashboard import bp as dashboard_bp
    from webadmin.health import bp as health_bp
    from webadmin.moderator import bp as moderator_bp
    from webadmin.portal import bp as portal_bp
    from webadmin.status import bp as status_bp

    api.register_blueprint(api_bp)
    for blueprint in (auth_bp, moderator_bp, status_bp, dashboard_bp, health_bp, portal_bp):
        app.register_blueprint(blueprint)

    limiter = Limiter(get_remote_address, app=app, storage_uri=settings.ratelimit_storage_uri, default_limits=[])
    app.extensions["login_limiter"] = limiter

    from webadmin.admin_panel import init_admin

    init_admin(app, settings)
    app.before_request(_make_nonce)
    app.after_request(_security_headers)


def _make_nonce() -> None:
    g.csp_nonce = secrets.token_urlsafe(16)


def _security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")
    if not is_api_request():
        if request.path.startswith("/admin"):
            headers.setdefault("Content-Security-Policy", ADMIN_CSP.format(nonce=g.get("csp_nonce", "")))
        elif request.path == "/queue":
            headers.setdefault("Content-Security-Policy", QUEUE_CSP)
        else:
            headers.setdefault("Content-Security-Policy", PAGE_CSP)
    if request.path.startswith(("/tickets", "/status", "/api/tickets", "/queue", "/portal")):
        headers.setdefault("Cache-Control", "no-store")
    return response
