"""Signing in to the portal without a password: a single-use, short-lived link emailed on request,
also offered from any status link; signing out revokes the session."""

from __future__ import annotations

from typing import cast

import flask
from flask import redirect, request, url_for
from flask_jwt_extended import get_jwt, unset_jwt_cookies, verify_jwt_in_request
from werkzeug.wrappers import Response

from models import Ticket, User, queue_email
from models.links import find_status_link
from models.portal_links import count_recent_links, create_sign_in_link, peek_sign_in_link, use_sign_in_link
from webadmin.intake import SubmissionRefused, clean_address
from webadmin.portal import bp
from webadmin.portal.guard import (
    anonymous_form_ok,
    outcome,
    page,
    refused_form,
    settings,
    signed_in_customer,
    start_session,
    this_client,
)
from webadmin.security import revoke

_LINK_FAILURES = {
    "used": ("Link already used", "This sign-in link was used already. Ask for a new one below.", 409),
    "expired": ("Link expired", "This sign-in link has expired. Ask for a new one below.", 410),
    "revoked": ("Link withdrawn", "This sign-in link was withdrawn. Ask for a new one below.", 410),
    "unknown": ("Link not valid", "This sign-in link is not valid. Ask for a new one below.", 404),
}


@bp.get("/sign-in")
def sign_in() -> Response:
    if signed_in_customer() is not None:
        return cast(Response, redirect(url_for("portal.tickets")))
    return page("portal/sign_in.html", error=None)


@bp.post("/sign-in")
def request_sign_in() -> Response:
    if not anonymous_form_ok():
        return refused_form()
    try:
        address = clean_address(request.form.get("email", "")[:320], settings())
    except SubmissionRefused as exc:
        return page("portal/sign_in.html", 422, error=str(exc))
    return send_sign_in_link(address)


def send_sign_in_link(address: str) -> Response:
    """Email a sign-in link to `address` when it is a customer's; the same page either way (it does not say
    who has an account), and per-address and per-client limits against mail bombing."""
    config = settings()
    if count_recent_links(email=address) >= config.portal_submissions_per_address_hour or (
        count_recent_links(client_key=this_client()) >= config.portal_submissions_per_client_hour
    ):
        return outcome("Too many requests", "We sent several sign-in links recently. Please use the last one.", 429)
    user = User.by_email(address)
    if user is not None and user.role == "user" and user.active:
        token = create_sign_in_link(address, config.portal_sign_in_minutes, this_client())
        link = config.app_url.rstrip("/") + url_for("portal.sign_in_link", token=token)
        queue_email(
            kind="notification",
            to=[address],
            subject="Your sign-in link",
            text=(
                "Hello,\n\nopen this link to see your support requests "
                f"(it works once, within {config.portal_sign_in_minutes} minutes):\n{link}\n\n"
                "If you did not ask for it, ignore this email.\n"
            ),
            domain=config.support_address.rsplit("@", 1)[1],
        )
    return outcome(
        "Check your email",
        "If we have requests from this address, we sent it a sign-in link. "
        f"It works once, within {config.portal_sign_in_minutes} minutes.",
    )


@bp.get("/sign-in/<token>")
def sign_in_link(token: str) -> Response:
    """A button, not a sign-in on GET: mail scanners open links too."""
    _link, state = peek_sign_in_link(token)
    if state != "ok":
        title, text, code = _LINK_FAILURES[state]
        return outcome(title, text, code, sign_in_form=True)
    return page("portal/sign_in_link.html", token=token)


@bp.post("/sign-in/<token>")
def use_link(token: str) -> Response:
    if not anonymous_form_ok():
        return refused_form()
    link, state = use_sign_in_link(token)
    if state != "ok" or link is None:
        title, text, code = _LINK_FAILURES[state]
        return outcome(title, text, code, sign_in_form=True)
    user = User.by_email(link.email)
    response = cast(Response, redirect(url_for("portal.tickets")))
    if user is None or not start_session(user, response):
        return outcome("Cannot sign in here", "This address cannot use the customer portal.", 403)
    return response


@bp.get("/from-status/<token>")
def from_status(token: str) -> Response:
    """From a status link: straight to the ticket when its requester is signed in, else offer a sign-in link
    to the ticket's address (a status link shows one ticket; the portal needs the mailbox)."""
    ticket, state = _status_ticket(token)
    if ticket is None:
        return outcome("Link not valid", "This status link is not valid any more.", 404 if state == "unknown" else 410)
    customer = signed_in_customer()
    if customer is not None and customer.email == ticket.requester_email.lower():
        return cast(Response, redirect(url_for("portal.ticket", number=ticket.number)))
    return page("portal/from_status.html", token=token)


@bp.post("/from-status/<token>")
def from_status_submit(token: str) -> Response:
    if not anonymous_form_ok():
        return refused_form()
    ticket, state = _status_ticket(token)
    if ticket is None:
        return outcome("Link not valid", "This status link is not valid any more.", 404 if state == "unknown" else 410)
    return send_sign_in_link(ticket.requester_email.lower())


def _status_ticket(token: str) -> tuple[Ticket | None, str]:
    link, state = find_status_link(token)
    if link is None or state != "ok":
        return None, state
    return Ticket.objects(id=link.ticket_id).only("number", "requester_email").first(), state


@bp.post("/sign-out")
def sign_out() -> Response:
    verify_jwt_in_request(optional=True)
    claims = get_jwt()
    if claims:
        revoke(claims)
    response = flask.make_response(redirect(url_for("portal.sign_in")))
    unset_jwt_cookies(response)
    return response
