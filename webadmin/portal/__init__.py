"""The customer's side: the public "new ticket" form with email confirmation, and the customer portal."""

from flask import Blueprint

bp = Blueprint("portal", __name__, url_prefix="/portal")

from webadmin.portal import access, submit, views  # noqa: E402,F401
