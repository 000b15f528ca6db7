"""Login and logout pages (the JSON login lives in the API blueprint)."""

from flask import Blueprint

bp = Blueprint("auth", __name__)

from webadmin.auth import views  # noqa: E402,F401
