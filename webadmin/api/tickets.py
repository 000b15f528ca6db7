"""Ticket endpoints: role-scoped list and detail, reply, note, status, escalate, assign (admin)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import current_app, url_for
from flask_jwt_extended import current_user
from flask_smorest import abort

from models import Ticket, TicketMessage, User
from webadmin import ticket_actions
from webadmin.api import bp
from webadmin.api.auth import BEARER
from webadmin.api.schemas import (
    AssignSchema,
    EscalateSchema,
    StatusSchema,
    TextSchema,
    ThreadMessageSchema,
    TicketDetailSchema,
    TicketPageSchema,
    TicketQuerySchema,
)
from webadmin.sanitize import safe_email_html
from webadmin.security import admin_required, any_user_required, staff_required
from webadmin.tickets import TicketFilters, get_ticket_for, list_tickets, thread_of


def _settings():  # noqa: ANN202 - the app's Settings
    return current_app.extensions["settings"]


SUMMARY_FIELDS = (
    "number",
    "subject",
    "status",
    "priority",
    "category",
    "requester_email",
    "mailbox",
    "assignee",
    "escalated",
    "sla_breached",
    "sla_due_at",
    "created_at",
    "updated_at",
)


def summary_dict(ticket: Ticket) -> dict:
    assignee = ticket.assignee
    values = {field: getattr(ticket, field) for field in SUMMARY_FIELDS if field != "assignee"}
    return _summary(values, assignee.email if assignee else None)


def summary_row(row: Mapping[str, Any], people: Mapping[Any, User]) -> dict:
    """`summary_dict` of a ticket's stored document (a list's row; `people`: its assignees by id)."""
    person = people.get(row.get("assignee"))
    return _summary(row, person.email if person else None)


def _summary(values: Mapping[str, Any], assignee: str | None) -> dict:
    """The summary fields, with the model's defaults for those a stored document lacks."""
    return {
        "number": values.get("number"),
        "subject": values.get("subject") or "",
        "status": values.get("status") or "new",
        "priority": values.get("priority") or "medium",
        "category": values.get("category"),
        "requester_email": values.get("requester_email"),
        "mailbox": values.get("mailbox") or None,  # the support address it came in on (None: the settings' mailbox)
        "assignee": assignee,
        "escalated": bool(values.get("escalated")),
        "sla_breached": bool(values.get("sla_breached")),
        "sla_due_at": values.get("sla_due_at"),
        "created_at": values.get("created_at"),
        "updated_at": values.get("updated_at"),
    }


def detail_dict(ticket: Ticket, viewer: User) -> dict:
    """Staff see everything; a requester sees only the public thread, no AI or routing notes."""
    staff = viewer.is_staff
    data = summary_dict(ticket)
    messages = []
    for message in thread_of(ticket, public_only=not staff):
        attachments = [
            {
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "url": url_for("moderator.attachment", number=ticket.number, message_id=str(message.id), index=i)
                if staff and a.file
                else None,
            }
            for i, a in enumerate(message.attachments)
        ]
        messages.append(
            {
                "id": str(message.id),
                "kind": message.kind,
                "public": message.public,
                "author": message.author.email if message.author else None,
                "from_address": message.from_address,
                "subject": message.subject,
                "text": message.text,
                "html": str(safe_email_html(message.html)),
                "created_at": message.created_at,
                "attachments": attachments,
            }
        )
    data["messages"] = messages
    if staff:
        data.update(
            required_skills=list(ticket.required_skills),
            language=ticket.language,
            summary=ticket.summary,
            helpful_notes=ticket.helpful_notes,
            facts={str(kind): [str(v) for v in values] for kind, values in (ticket.facts or {}).items()},
            similar_tickets=[dict(similar) for similar in ticket.similar_tickets or []],
            confidence={k: float(v) for k, v in (ticket.triage.confidence or {}).items()},
            routing_reason=ticket.routing_reason,
            escalation_reason=ticket.escalation_reason,
            triage_state=ticket.triage.state,
        )
    return data


@bp.get("/tickets")
@any_user_required
@bp.arguments(TicketQuerySchema, location="query")
@bp.response(200, TicketPageSchema)
@bp.doc(security=BEARER)
def tickets(query: dict) -> dict:
    """Tickets the caller may see, newest first, filtered and paginated."""
    filters = TicketFilters(
        status=query.get("status", ""),
        priority=query.get("priority", ""),
        category=query.get("category", ""),
        search=query.get("q", ""),
        scope=query.get("scope", ""),
    )
    page = list_tickets(
        current_user, filters, query["page"], query["per_page"], count=query["count"], fields=SUMMARY_FIELDS
    )
    return {
        "items": [summary_row(row, page.people) for row in page.items],
        "page": page.page,
        "per_page": page.per_page,
        "total": page.total,
        "total_exact": page.total_exact,
        "has_next": page.has_next,
    }


@bp.get("/tickets/<int:number>")
@any_user_required
@bp.response(200, TicketDetailSchema)
@bp.doc(security=BEARER)
def ticket(number: int) -> dict:
    """One ticket with its thread (404 when missing, 403 when not yours)."""
    return detail_dict(get_ticket_for(current_user, number), current_user)


@bp.post("/tickets/<int:number>/replies")
@staff_required
@bp.arguments(TextSchema)
@bp.response(201, ThreadMessageSchema)
@bp.doc(security=BEARER)
def post_reply(body: dict, number: int) -> dict:
    """Reply to the requester by email, threaded to their last message."""
    ticket = get_ticket_for(current_user, number)
    message = ticket_actions.reply(ticket, current_user, body["text"], _settings())
    return _message_dict(message)


@bp.post("/tickets/<int:number>/notes")
@staff_required
@bp.arguments(TextSchema)
@bp.response(201, ThreadMessageSchema)
@bp.doc(security=BEARER)
def post_note(body: dict, number: int) -> dict:
    """An internal note (never shown to the requester)."""
    ticket = get_ticket_for(current_user, number)
    return _message_dict(ticket_actions.add_note(ticket, current_user, body["text"], _settings()))


@bp.post("/tickets/<int:number>/status")
@staff_required
@bp.arguments(StatusSchema)
@bp.response(200, TicketDetailSchema)
@bp.doc(security=BEARER)
def post_status(body: dict, number: int) -> dict:
    """Change the ticket's status."""
    ticket = get_ticket_for(current_user, number)
    ticket_actions.change_status(ticket, current_user, body["status"], _settings())
    return detail_dict(ticket, current_user)


@bp.post("/tickets/<int:number>/escalate")
@staff_required
@bp.arguments(EscalateSchema)
@bp.response(200, TicketDetailSchema)
@bp.doc(security=BEARER)
def post_escalate(body: dict, number: int) -> dict:
    """Escalate to the admins with a reason."""
    ticket = get_ticket_for(current_user, number)
    ticket_actions.escalate(ticket, current_user, body["reason"], _settings())
    return detail_dict(ticket, current_user)


@bp.post("/tickets/<int:number>/assign")
@admin_required
@bp.arguments(AssignSchema)
@bp.response(200, TicketDetailSchema)
@bp.doc(security=BEARER)
def post_assign(body: dict, number: int) -> dict:
    """Assign to an active moderator or admin (null unassigns). Admins only."""
    ticket = get_ticket_for(current_user, number)
    assignee = None
    if body["assignee_email"] is not None:
        assignee = User.by_email(body["assignee_email"])
        if assignee is None or not assignee.active or not assignee.is_staff:
            abort(422, errors={"json": {"assignee_email": ["No active moderator or admin with this email."]}})
    ticket_actions.assign(ticket, current_user, assignee, body.get("reason", ""), _settings())
    return detail_dict(ticket, current_user)


def _message_dict(message: TicketMessage) -> dict:
    return {
        "id": str(message.id),
        "kind": message.kind,
        "public": message.public,
        "author": message.author.email if message.author else None,
        "from_address": message.from_address,
        "subject": message.subject,
        "text": message.text,
        "html": "",
        "created_at": message.created_at,
        "attachments": [],
    }
