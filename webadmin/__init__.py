"""The web app: moderator pages, JSON API, Flask-Admin, and the `flask` CLI."""

from __future__ import annotations

import logging

import click
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from config import Settings, SettingsError, load_settings
from models import connect_db

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> Flask:
    """The one app factory. `settings` defaults to the environment (and `.env`).

    No I/O here: the database connection is lazy and indexes are created by `flask --app webadmin
    db init` (called by run_web.py and gunicorn.conf.py once before serving).
    """
    if settings is None:
        try:
            settings = load_settings()
        except SettingsError as exc:
            if click.get_current_context(silent=True) is None:
                raise  # gunicorn & co.: refuse to start
            return _cli_only_app(exc)  # `flask --help` still answers; each command reports the problem
    app = Flask(__name__)
    app.config.update(settings.flask_config())
    app.extensions["settings"] = settings
    if settings.proxy_fix_x_for:
        # Behind a reverse proxy every client would otherwise share the proxy's address (and its login limit).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_fix_x_for, x_proto=1)  # type: ignore[method-assign]

    connect_db(settings.mongo_uri)  # lazy: no round-trip until the first query

    from webadmin.cli import register_cli
    from webadmin.setup import init_web

    init_web(app, settings)
    register_cli(app)
    return app


def _cli_only_app(problem: SettingsError) -> Flask:
    """An app that only lists the commands (under `flask`, when settings are missing or invalid)."""
    from webadmin.cli import register_cli

    app = Flask(__name__)
    app.extensions["settings_error"] = problem
    register_cli(app)

    @app.before_request
    def refuse() -> tuple[str, int]:
        return f"configuration error: {problem}\n", 503

    return app


def get_settings(app: Flask) -> Settings:
    return app.extensions["settings"]
