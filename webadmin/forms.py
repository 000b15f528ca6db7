"""Small helpers to read and validate HTML form input (pages do not use the API schemas)."""

from __future__ import annotations

from flask import request
from werkzeug.exceptions import BadRequest


def form_text(name: str, *, max_length: int, required: bool = True) -> str:
    value = request.form.get(name, "").replace("\x00", "").strip()
    if required and not value:
        raise BadRequest(f"Please fill in {name}.")
    if len(value) > max_length:
        raise BadRequest(f"{name} is too long (at most {max_length} characters).")
    return value


def form_choice(name: str, choices: tuple[str, ...], *, allow_empty: bool = False) -> str:
    value = request.form.get(name, "").strip()
    if allow_empty and value == "":
        return value
    if value not in choices:
        raise BadRequest(f"{name} must be one of {', '.join(choices)}.")
    return value


def arg_choice(name: str, choices: tuple[str, ...]) -> str:
    """A query-string filter: unknown values are ignored rather than failing the page."""
    value = request.args.get(name, "").strip()
    return value if value in choices else ""


def arg_int(name: str, default: int, lo: int, hi: int) -> int:
    try:
        return max(lo, min(hi, int(request.args.get(name, default))))
    except ValueError:
        return default
