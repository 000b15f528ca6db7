"""GET /status/<token>: the public thread of one ticket; never notes, AI output, auto-replies or other
tickets. POST /tickets/<n>/status-links/revoke: an agent ends every link of a ticket at once."""

from __future__ import annotations

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_jwt_extended import current_user

from models import Ticket, record_audit
from models.links import find_status_link, revoke_status_links
from webadmin.sanitize import safe_email_html
from webadmin.security import staff_required
from webadmin.status import bp
from webadmin.status.access_log import install_dev_server_filter
from webadmin.tickets import get_ticket_for, thread_of


@bp.record_once
def _hide_tokens_in_dev_server_log(_state: object) -> None:
    install_dev_server_filter()


_GONE = {"expired": "This link has expired.", "revoked": "This link was withdrawn."}


@bp.get("/status/<token>")
def status_page(token: str) -> tuple[str, int] | str:
    link, state = find_status_link(token)
    if state in _GONE:
        return render_template("status_error.html", code=410, message=_GONE[state]), 410
    ticket = Ticket.objects(id=link.ticket_id).first() if link is not None else None
    if ticket is None:
        return render_template("status_error.html", code=404, message="This link is not valid."), 404
    messages = [m for m in thread_of(ticket, public_only=True) if not m.auto_submitted]
    return render_template("status.html", ticket=ticket, messages=messages, html_of=safe_email_html)


@bp.post("/tickets/<int:number>/status-links/revoke")
@staff_required
def revoke_links(number: int) -> ResponseReturnValue:
    """End every status link of a ticket (e.g. a link was forwarded or leaked); later replies carry new ones."""
    ticket = get_ticket_for(current_user, number)
    revoked = revoke_status_links(ticket.number, current_user.email)
    record_audit(
        current_user.email,
        "status_links_revoke",
        f"ticket:{ticket.number}",
        ticket_number=ticket.number,
        detail=f"{revoked} link(s)",
    )
    if request.headers.get("Authorization", "").startswith("Bearer "):
        return jsonify(revoked=revoked)
    flash(f"Status links withdrawn: {revoked}.")
    return redirect(url_for("moderator.ticket", number=number))
