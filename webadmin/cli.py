"""The `flask --app webadmin` command line: the `db` group, and one guard around every command so that
a missing setting or an unreachable database ends in one line and exit code 2, not a traceback."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import ScriptInfo
from pymongo.errors import ConnectionFailure
from pymongo.uri_parser import parse_uri

from models import connect_db, ensure_all_indexes

logger = logging.getLogger(__name__)

CLI_DB_TIMEOUT_MS = 1500  # a command with the database down gives up after this, well inside 5 s
_GUARDED = "_helpdesk_guarded"


class CliProblem(click.ClickException):
    """One line on stderr (`Error: ...`) and exit code 2."""

    exit_code = 2


def with_timeouts(mongo_uri: str, timeout_ms: int = CLI_DB_TIMEOUT_MS) -> str:
    """`mongo_uri` with short server-selection and connect timeouts unless it sets its own."""
    if "serverselectiontimeoutms" in mongo_uri.lower():
        return mongo_uri
    options = f"serverSelectionTimeoutMS={timeout_ms}&connectTimeoutMS={timeout_ms}"
    if "?" in mongo_uri:
        return f"{mongo_uri}&{options}"
    rest = mongo_uri.split("://", 1)[-1]
    return f"{mongo_uri}?{options}" if "/" in rest else f"{mongo_uri}/?{options}"


def where(mongo_uri: str) -> str:
    """Host list of a URI, without user name or password (for messages)."""
    try:
        return ",".join(f"{host}:{port}" for host, port in parse_uri(mongo_uri)["nodelist"]) or "?"
    except Exception:  # an unparsable URI was rejected by config already; never echo it back
        return "the configured server"


def _app() -> Flask:
    """The app of the running command (`flask` pushes its context; a test runner may not)."""
    if current_app:
        return current_app._get_current_object()  # type: ignore[attr-defined]
    return click.get_current_context().ensure_object(ScriptInfo).load_app()


def _guarded(callback: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        app = _app()
        problem = app.extensions.get("settings_error")
        if problem is not None:
            raise CliProblem(f"configuration: {problem}")
        uri = app.extensions["settings"].mongo_uri
        connect_db(with_timeouts(uri))  # lazy: the first query connects, or fails within the timeout
        try:
            return callback(*args, **kwargs)
        except ConnectionFailure as exc:
            logger.debug("database unreachable: %s", exc)
            raise CliProblem(
                f"database unreachable at {where(uri)}: start it (`make dev`, or scripts/db.sh start) or set MONGO_URI"
            ) from None

    setattr(run, _GUARDED, True)
    return run


def guard(command: click.Command) -> click.Command:
    """Wrap the callbacks of `command` and its sub-commands (once: the command objects are shared by
    every app a process creates)."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            guard(sub)
    elif command.callback is not None and not getattr(command.callback, _GUARDED, False):
        command.callback = _guarded(command.callback)
    return command


@click.group("db", help="Database set-up.")
def db_cli() -> None:
    pass


@db_cli.command("init")
def db_init() -> None:
    """Create every declared index (idempotent; run once before starting the web app or daemon)."""
    ensure_all_indexes()
    click.echo("indexes ready")


def register_cli(app: Flask) -> None:
    from triage.cli import triage_cli
    from webadmin.cli_demo import demo_cli
    from webadmin.cli_mail import mail_cli
    from webadmin.cli_users import skills_cli, users_cli

    for command in (db_cli, users_cli, skills_cli, triage_cli, demo_cli, mail_cli):
        app.cli.add_command(guard(command))
