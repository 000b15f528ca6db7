"""The requester's read-only status page, reached by a signed, expiring link (no password)."""

from flask import Blueprint

bp = Blueprint("status", __name__)

from webadmin.status import views  # noqa: E402,F401
