"""The public "new ticket" form and its confirmation link.

Anyone can type any address, so nothing enters the pipeline until the address is confirmed: the form
stores the ticket as unconfirmed and emails a single-use link; opening it (and pressing the button, so a
mail scanner fetching the link confirms nothing) reserves the ticket number and hands the ticket to the
daemon, which acknowledges and triages it like an email.
"""

from __future__ import annotations

from flask import request, url_for
from werkzeug.wrappers import Response

from models import next_ticket_number
from models.submissions import confirm_submission, count_recent, find_confirmation
from webadmin.intake import (
    NewTicket,
    SubmissionRefused,
    Upload,
    submit_ready_ticket,
    submit_web_ticket,
    validate_ticket,
)
from webadmin.portal import bp
from webadmin.portal.guard import (
    anonymous_form_ok,
    customer_for,
    outcome,
    page,
    refused_form,
    settings,
    signed_in_customer,
    start_session,
    this_client,
)

HONEYPOT = "website"
MAX_FILES = 5


def uploads() -> list[Upload]:
    files = [f for f in request.files.getlist("attachments") if f and f.filename][:MAX_FILES]
    return [Upload(f.filename or "attachment", f.mimetype or "application/octet-stream", f.read()) for f in files]


@bp.get("/new")
def new_ticket() -> Response:
    customer = signed_in_customer()
    return page("portal/new.html", customer=customer, values={}, error=None)


@bp.post("/new")
def submit_ticket() -> Response:
    if not anonymous_form_ok():
        return refused_form()
    customer = signed_in_customer()
    form = request.form
    values = {name: form.get(name, "")[:60_000] for name in ("name", "email", "subject", "text")}
    if customer is not None:
        values["email"] = customer.email
    if form.get(HONEYPOT):  # only bots fill the hidden field: they see success, nothing is stored or sent
        return _sent()
    try:
        ticket = validate_ticket(
            NewTicket(values["email"], values["name"], values["subject"], values["text"], uploads()), settings()
        )
    except SubmissionRefused as exc:
        return page("portal/new.html", 422, customer=customer, values=values, error=str(exc))
    config = settings()
    if count_recent(requester_email=ticket.email) >= config.portal_submissions_per_address_hour or (
        count_recent(client_key=this_client()) >= config.portal_submissions_per_client_hour
    ):
        return outcome(
            "Too many requests",
            "We received several requests from this address or network in the last hour. "
            "Please wait a while, or reply to one of our emails instead.",
            429,
        )
    if customer is not None:  # signed in through a link we emailed: the address is confirmed already
        submission, _link = submit_ready_ticket(ticket, config, source="portal", key="")
        return outcome(
            "Request received",
            f"Thank you: your request is ticket #{submission.ticket_number}. We are sending you an "
            "acknowledgement by email, and it appears in your requests in a moment.",
            number=submission.ticket_number,
            portal_link=True,
        )
    confirm_url = url_for("portal.confirm", token="TOKEN", _external=False).replace("TOKEN", "{token}")
    try:
        submit_web_ticket(ticket, config, client=this_client(), confirm_url=config.app_url.rstrip("/") + confirm_url)
    except SubmissionRefused as exc:
        return page("portal/new.html", 422, customer=customer, values=values, error=str(exc))
    return _sent()


def _sent() -> Response:
    return outcome(
        "Check your email",
        "We sent a confirmation link to the address you gave. Your request is opened once you confirm it; "
        f"the link is valid for {settings().portal_confirm_minutes} minutes and works once.",
    )


_CONFIRM_FAILURES = {
    "used": ("Link already used", "This confirmation link was used already: your request was sent.", 409),
    "expired": (
        "Link expired",
        "This confirmation link has expired and the request was discarded. Please fill in the form again.",
        410,
    ),
    "unknown": ("Link not valid", "This confirmation link is not valid.", 404),
}


@bp.get("/confirm/<token>")
def confirm(token: str) -> Response:
    """Show a button rather than confirming on GET: mail scanners fetch links too."""
    _found, state = find_confirmation(token)
    if state != "ok":
        title, text, code = _CONFIRM_FAILURES[state]
        return outcome(title, text, code)
    return page("portal/confirm.html", token=token)


@bp.post("/confirm/<token>")
def confirm_submit(token: str) -> Response:
    if not anonymous_form_ok():
        return refused_form()
    submission, state = confirm_submission(token, next_ticket_number)
    if state != "ok" or submission is None:
        title, text, code = _CONFIRM_FAILURES[state]
        return outcome(title, text, code)
    customer = customer_for(submission.requester_email)
    response = outcome(
        "Request received",
        f"Thank you: your request is ticket #{submission.ticket_number}. We are sending you an acknowledgement "
        "by email, and you can follow it in your portal.",
        number=submission.ticket_number,
        portal_link=True,
    )
    start_session(customer, response)
    return response
