"""The moderator workspace: queue, ticket page and its actions, my skills."""

from flask import Blueprint

bp = Blueprint("moderator", __name__)

from webadmin.moderator import views  # noqa: E402,F401
