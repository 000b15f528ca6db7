"""The team dashboard: charts drawn server-side as inline SVG."""

from flask import Blueprint

bp = Blueprint("dashboard", __name__)

from webadmin.dashboard import views  # noqa: E402,F401
