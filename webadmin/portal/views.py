"""The signed-in customer's pages: every ticket of their address, one public thread, reply, close, reopen.

A customer only ever reaches tickets whose requester is their own address; any other number is "not
found" (not "forbidden": it does not tell a ticket exists).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import cast

from bson import ObjectId
from bson.errors import InvalidId
from flask import flash, redirect, request, send_file, url_for
from flask_jwt_extended import current_user
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from models import Ticket, TicketMessage, utcnow
from models.tickets import OPEN_STATUSES
from models.users import normalise_email
from webadmin.intake import MAX_TEXT, clean_text, submit_reply
from webadmin.portal import bp
from webadmin.portal.guard import customer_required, page, settings
from webadmin.portal.submit import uploads
from webadmin.sanitize import safe_email_html
from webadmin.tickets import MAX_TICKET_NUMBER, thread_of

MAX_LISTED = 200
CLOSED = ("resolved", "closed")


def own_ticket(number: int) -> Ticket:
    """The signed-in customer's ticket `number` (unique `number` index), else NotFound."""
    ticket = Ticket.objects(number=number).first() if 0 < number <= MAX_TICKET_NUMBER else None
    if ticket is None or normalise_email(ticket.requester_email) != current_user.email:
        raise NotFound(f"You have no ticket #{number}.")
    return ticket


def may_reopen(ticket: Ticket) -> bool:
    """A resolved or closed ticket, within PORTAL_REOPEN_DAYS of when it was resolved or closed."""
    if ticket.status not in CLOSED:
        return False
    since = ticket.resolved_at or ticket.updated_at or ticket.created_at
    return since is not None and utcnow() - since <= dt.timedelta(days=settings().portal_reopen_days)


@bp.get("/")
@customer_required
def tickets() -> Response:
    """Every ticket of this address, newest first: the (requester_email, -number) index."""
    mine = list(
        Ticket.objects(requester_email=current_user.email)
        .order_by("-number")
        .only("number", "subject", "status", "created_at", "last_message_at", "updated_at")
        .limit(MAX_LISTED)
    )
    return page("portal/tickets.html", tickets=mine, last_activity=last_activity)


def last_activity(ticket: Ticket) -> dt.datetime | None:
    """The latest of its last message and its last change (a status change counts too)."""
    moments = [m for m in (ticket.updated_at, ticket.last_message_at, ticket.created_at) if m is not None]
    return max(moments) if moments else None


@bp.get("/tickets/<int:number>")
@customer_required
def ticket(number: int) -> Response:
    found = own_ticket(number)
    messages = [m for m in thread_of(found, public_only=True) if not m.auto_submitted]
    return page(
        "portal/ticket.html",
        ticket=found,
        messages=messages,
        html_of=safe_email_html,
        can_reply=found.status in OPEN_STATUSES or may_reopen(found),
        can_close=found.status in OPEN_STATUSES,
        can_reopen=may_reopen(found),
        reopen_days=settings().portal_reopen_days,
    )


@bp.post("/tickets/<int:number>/reply")
@customer_required
def reply(number: int) -> Response:
    """Hand the reply to the daemon as an email answering the ticket: it joins the thread exactly as an
    emailed reply (reopening a pending, resolved or closed ticket; the assignee is notified: daemon/replies.py)."""
    found = own_ticket(number)
    text = clean_text(request.form.get("text", ""))
    if not text or len(text) > MAX_TEXT:
        flash(f"Please write your reply (at most {MAX_TEXT} characters).")
        return _back(number)
    if found.status not in OPEN_STATUSES and not may_reopen(found):
        flash("This ticket is closed. Please open a new request.")
        return _back(number)
    files = uploads()
    if sum(len(f.data) for f in files) > settings().attachment_max_bytes:
        flash(f"Attachments are too large (at most {settings().attachment_max_bytes} bytes together).")
        return _back(number)
    submit_reply(found, text, files, settings())
    flash("Your reply was sent. It appears in the conversation in a moment.")
    return _back(number)


@bp.post("/tickets/<int:number>/close")
@customer_required
def close(number: int) -> Response:
    found = own_ticket(number)
    now = utcnow()
    changed = Ticket.objects(id=found.id, status__in=list(OPEN_STATUSES)).update_one(
        set__status="closed", set__resolved_at=now, set__updated_at=now
    )
    if changed:
        _event(found, "Closed by the requester in the customer portal.")
        flash(f"The ticket is closed. You can reopen it here within {settings().portal_reopen_days} days.")
    return _back(number)


@bp.post("/tickets/<int:number>/reopen")
@customer_required
def reopen(number: int) -> Response:
    found = own_ticket(number)
    if not may_reopen(found):
        flash("This ticket can no longer be reopened. Please open a new request.")
        return _back(number)
    changed = Ticket.objects(id=found.id, status__in=list(CLOSED)).update_one(
        set__status="open", unset__resolved_at=True, set__updated_at=utcnow()
    )
    if changed:
        _event(found, "Reopened by the requester in the customer portal.")
        flash("The ticket is open again.")
    return _back(number)


@bp.get("/tickets/<int:number>/attachments/<message_id>/<int:index>")
@customer_required
def attachment(number: int, message_id: str, index: int) -> Response:
    """An attachment of a public message of the customer's own ticket, always as a download."""
    found = own_ticket(number)
    try:
        message = TicketMessage.objects(id=ObjectId(message_id)).first()
    except InvalidId:
        message = None
    visible = message is not None and message.ticket_number == found.number and message.public
    if not visible or message.kind not in ("inbound", "outbound") or index >= len(message.attachments):
        raise NotFound("No such attachment.")
    ref = message.attachments[index]
    stream = ref.file.get() if ref.file else None
    if stream is None:
        raise NotFound("The attachment's content is missing.")
    return send_file(
        stream, mimetype="application/octet-stream", as_attachment=True, download_name=ref.filename or "attachment"
    )


def _event(ticket: Ticket, text: str) -> None:
    """An internal event in the agents' thread (not shown to the customer)."""
    TicketMessage(
        ticket=ticket,
        ticket_number=ticket.number,
        kind="event",
        public=False,
        message_id=f"<event-{uuid.uuid4().hex}@{settings().support_address.rsplit('@', 1)[1]}>",
        author=current_user.id,
        text=text,
    ).save()


def _back(number: int) -> Response:
    return cast(Response, redirect(url_for("portal.ticket", number=number)))
