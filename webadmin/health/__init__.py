"""GET /healthz for monitoring."""

from flask import Blueprint

bp = Blueprint("health", __name__)

from webadmin.health import views  # noqa: E402,F401
