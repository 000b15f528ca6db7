"""The web app: moderator pages, JSON API, Flask-Admin, and the `flask` CLI."""

from __future__ import annotations

import logging

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from config import Settings, load_settings
from models import connect_db, ensure_all_indexes
from webadmin.extensions import mail

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> Flask:
    """The one app factory. `settings` defaults to the environment (and `.env`)."""
    settings = settings or load_settings()
    app = Flask(__name__)
    app.config.update(settings.flask_config())
    app.extensions["settings"] = settings
    if settings.proxy_fix_x_for:
        # Behind a reverse proxy every client would otherwise share the proxy's address (and its login limit).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_fix_x_for, x_proto=1)  # type: ignore[method-assign]

    connect_db(settings.mongo_uri)
    ensure_all_indexes()
    mail.init_app(app)

    from webadmin.setup import init_web

    init_web(app, settings)

    from webadmin.cli_users import skills_cli, users_cli

    app.cli.add_command(users_cli)
    app.cli.add_command(skills_cli)

    from triage.cli import triage_cli

    app.cli.add_command(triage_cli)

    from daemon.cli import mail_cli

    app.cli.add_command(mail_cli)
    return app


def get_settings(app: Flask) -> Settings:
    return app.extensions["settings"]
