"""GET /status/<token>: the public thread of one ticket; never notes, AI output or other tickets."""

from __future__ import annotations

from flask import current_app, render_template

from models import Ticket
from models.links import read_status_token
from webadmin.sanitize import safe_email_html
from webadmin.status import bp
from webadmin.tickets import MAX_TICKET_NUMBER, thread_of

_NO_EXPIRY = 100 * 365 * 24 * 3600  # only to tell an expired link from a forged one


@bp.get("/status/<token>")
def status_page(token: str) -> tuple[str, int] | str:
    secret = current_app.extensions["settings"].secret_key
    found = read_status_token(secret, token)
    if found is None:
        if read_status_token(secret, token, max_age=_NO_EXPIRY) is not None:
            return render_template("status_error.html", code=410, message="This link has expired."), 410
        return render_template("status_error.html", code=404, message="This link is not valid."), 404
    number, email = found
    ticket = Ticket.objects(number=number).first() if 0 < number <= MAX_TICKET_NUMBER else None
    if ticket is None or ticket.requester_email.lower() != email.lower():
        return render_template("status_error.html", code=404, message="This link is not valid."), 404
    return render_template(
        "status.html", ticket=ticket, messages=thread_of(ticket, public_only=True), html_of=safe_email_html
    )
