"""Status-link tokens stay out of access logs: gunicorn's and the development server's request lines
show only the first characters of a `/status/<token>` path (the token is a credential)."""

from __future__ import annotations

import logging
from typing import Any

from gunicorn.glogging import Logger

from models.links import redact_status_path

_REQUEST_ATOMS = ("r", "U", "f", "{raw_uri}e", "{path_info}e", "{request_uri}e")


class RedactingLogger(Logger):
    """gunicorn logger (`logger_class` in gunicorn.conf.py) whose access-log atoms hide status tokens."""

    def atoms(self, resp: Any, req: Any, environ: dict, request_time: Any) -> dict:
        values = super().atoms(resp, req, environ, request_time)
        for key in _REQUEST_ATOMS:
            if isinstance(values.get(key), str):
                values[key] = redact_status_path(values[key])
        return values


class RedactStatusTokens(logging.Filter):
    """For werkzeug's request log (the development server)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_status_path(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact_status_path(record.msg)
        return True


def install_dev_server_filter() -> None:
    werkzeug_logger = logging.getLogger("werkzeug")
    if not any(isinstance(f, RedactStatusTokens) for f in werkzeug_logger.filters):
        werkzeug_logger.addFilter(RedactStatusTokens())
