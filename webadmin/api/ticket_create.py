"""POST /api/tickets: open a ticket as a signed-in customer (role user) or as an integration with an API key.

The ticket takes the same path as an email (models/submissions.py, daemon/web_intake.py): its number is
reserved here and returned with a status link at once (201), before the daemon ingests, acknowledges and
triages it. An `Idempotency-Key` header makes a retried request return the first one's ticket.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

from flask import current_app, g, request
from flask_jwt_extended import current_user, verify_jwt_in_request
from flask_smorest import abort
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from mongoengine import NotUniqueError

from models.api_keys import KEY_PREFIX, find_api_key
from models.links import status_url
from models.submissions import WebSubmission
from webadmin.api import bp
from webadmin.api.schemas import StrictSchema
from webadmin.intake import NewTicket, SubmissionRefused, Upload, status_token_for, submit_ready_ticket, validate_ticket

logger = logging.getLogger(__name__)
SCOPE = "tickets:create"
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_ATTACHMENTS = 10
SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"apiKey": []}]


def _not_blank(value: str) -> None:
    if not value.strip() or "\x00" in value:
        raise ValidationError("Must not be blank or contain NUL characters.")


class AttachmentInSchema(StrictSchema):
    filename = fields.String(required=True, validate=validate.Length(min=1, max=200))
    content_type = fields.String(load_default="application/octet-stream", validate=validate.Length(max=100))
    content_base64 = fields.String(required=True)


class NewTicketSchema(StrictSchema):
    subject = fields.String(required=True, validate=[validate.Length(min=1, max=200), _not_blank])
    description = fields.String(required=True, validate=[validate.Length(min=1, max=50_000), _not_blank])
    requester_email = fields.String(
        validate=validate.Length(min=3, max=254), metadata={"description": "Required with an API key."}
    )
    requester_name = fields.String(load_default="", validate=validate.Length(max=100))
    attachments = fields.List(
        fields.Nested(AttachmentInSchema), load_default=list, validate=validate.Length(max=MAX_ATTACHMENTS)
    )

    @validates_schema
    def _decodable(self, data: dict, **_kwargs: Any) -> None:
        for index, item in enumerate(data.get("attachments") or []):
            try:
                item["data"] = base64.b64decode(item["content_base64"], validate=True)
            except (binascii.Error, ValueError):
                raise ValidationError({"attachments": {index: ["content_base64 is not valid base64."]}}) from None


class CreatedTicketSchema(Schema):
    number = fields.Integer(metadata={"description": "The ticket number (reserved; the ticket appears shortly)."})
    status = fields.String(metadata={"description": "'received': acknowledgement and triage follow."})
    status_url = fields.String(metadata={"description": "The requester's status link for this ticket."})


def ticket_creator(view: Callable) -> Callable:
    """An active API key with the tickets:create scope, or a signed-in customer; `g.creator` says which."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        if header.startswith(f"Bearer {KEY_PREFIX}"):
            key, state = find_api_key(header[len("Bearer ") :].strip(), SCOPE)
            if state == "scope":
                abort(403, message=f"This API key lacks the {SCOPE} scope.")
            if state != "ok" or key is None:
                abort(401, message="This API key was revoked." if state == "revoked" else "Unknown API key.")
            g.creator = ("key", f"key:{getattr(key, 'prefix', '')}", None)
        else:
            verify_jwt_in_request()
            if current_user.role != "user":
                abort(403, message="Staff cannot open tickets here; customers and API keys can.")
            g.creator = ("user", f"user:{current_user.id}", current_user)
        return view(*args, **kwargs)

    return wrapper


@bp.post("/tickets")
@ticket_creator
@bp.arguments(NewTicketSchema)
@bp.response(201, CreatedTicketSchema)
@bp.alt_response(401, description="Missing, unknown or revoked credentials")
@bp.alt_response(403, description="Staff token, or a key without the tickets:create scope")
@bp.doc(
    security=SECURITY,
    parameters=[
        {
            "in": "header",
            "name": IDEMPOTENCY_HEADER,
            "required": False,
            "schema": {"type": "string", "maxLength": 200},
            "description": "Retries with the same key return the first request's ticket.",
        }
    ],
)
def create_ticket(body: dict) -> tuple[dict, int, dict[str, str]]:
    """Open a ticket. Customers open it for their own address; API keys name the requester."""
    kind, principal, user = g.creator
    if kind == "user":
        body["requester_email"], body["requester_name"] = user.email, body.get("requester_name") or user.name or ""
    elif not body.get("requester_email"):
        abort(422, errors={"json": {"requester_email": ["Required when using an API key."]}})
    settings = current_app.extensions["settings"]
    try:
        ticket = validate_ticket(_new_ticket(body), settings)
    except SubmissionRefused as exc:
        abort(422, message=str(exc))
    fingerprint = _fingerprint(body)
    idempotency = request.headers.get(IDEMPOTENCY_HEADER, "")
    if len(idempotency) > 200 or "\x00" in idempotency:
        abort(400, message=f"{IDEMPOTENCY_HEADER} must be at most 200 characters.")
    key = _submission_key(principal, idempotency) if idempotency else secrets.token_hex(20)
    if idempotency:
        earlier = WebSubmission.objects(key=key).only("ticket_number", "fingerprint").first()
        if earlier is not None:
            return _replay(earlier, fingerprint, settings)
    try:
        submission, link = submit_ready_ticket(
            ticket, settings, source=principal.replace("key:", "api-key:"), key=key, fingerprint=fingerprint
        )
    except SubmissionRefused as exc:
        abort(422, message=str(exc))
    except NotUniqueError:  # the same Idempotency-Key in a concurrent request: answer as the first
        earlier = WebSubmission.objects(key=key).only("ticket_number", "fingerprint").get()
        return _replay(earlier, fingerprint, settings)
    logger.info("ticket #%s submitted by API (%s)", submission.ticket_number, principal.split(":")[0])
    return {"number": submission.ticket_number, "status": "received", "status_url": link}, 201, {}


def _new_ticket(body: dict) -> NewTicket:
    uploads = [
        Upload(item["filename"], item.get("content_type") or "application/octet-stream", item["data"])
        for item in body.get("attachments") or []
    ]
    return NewTicket(
        email=body["requester_email"],
        name=body.get("requester_name") or "",
        subject=body["subject"],
        text=body["description"],
        attachments=uploads,
    )


def _submission_key(principal: str, idempotency: str) -> str:
    """One submission per (caller, Idempotency-Key): the key is its `_id`, so the unique index decides."""
    return "idem-" + hashlib.sha256(f"{principal}\x00{idempotency}".encode()).hexdigest()[:40]


def _fingerprint(body: dict) -> str:
    summary = {k: v for k, v in body.items() if k != "attachments"}
    summary["attachments"] = [hashlib.sha256(a["data"]).hexdigest() for a in body.get("attachments") or []]
    return hashlib.sha256(json.dumps(summary, sort_keys=True, default=str).encode()).hexdigest()


def _replay(earlier: WebSubmission, fingerprint: str, settings: Any) -> tuple[dict, int, dict[str, str]]:
    if earlier.fingerprint != fingerprint:
        abort(422, message=f"This {IDEMPOTENCY_HEADER} was used for a different request.")
    link = status_url(settings.app_url, status_token_for(settings, earlier.key))
    body = {"number": earlier.ticket_number, "status": "received", "status_url": link}
    return body, 201, {"Idempotent-Replayed": "true"}
