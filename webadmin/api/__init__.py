"""The JSON API (flask-smorest): OpenAPI at /api/openapi.json, bearer tokens, JSON errors only."""

from flask_smorest import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api", description="Helpdesk JSON API")

from webadmin.api import auth, ticket_create, tickets, users  # noqa: E402,F401
