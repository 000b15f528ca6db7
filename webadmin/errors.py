"""Errors: JSON under /api (flask-smorest's format), friendly HTML pages elsewhere; never a stack trace."""

from __future__ import annotations

import logging

from flask import Flask, render_template
from flask_smorest import Api
from werkzeug.exceptions import HTTPException, InternalServerError

from webadmin.security import is_api_request

logger = logging.getLogger(__name__)


class HelpdeskApi(Api):
    """flask-smorest's Api, but its JSON error handler only answers for /api paths."""

    def handle_http_exception(self, error: HTTPException):  # noqa: ANN201 - a Flask response
        if is_api_request():
            return super().handle_http_exception(error)
        return render_template("error.html", code=error.code, message=error.description), error.code or 500


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(Exception)
    def unexpected(error: Exception):  # noqa: ANN202 - a Flask response
        if isinstance(error, HTTPException):
            return app.extensions["smorest_api"].handle_http_exception(error)
        logger.exception("unhandled error")
        return app.extensions["smorest_api"].handle_http_exception(InternalServerError())
