# ruff: noqa: F811 - pytest fixtures imported from tests.web_support
"""The public "new ticket" form: confirmation by email, single-use and expiring links, limits, honeypot."""

from __future__ import annotations

import datetime as dt

from models import MessageLedger, Ticket, TicketMessage, User
from models.api_keys import create_api_key
from models.submissions import WebSubmission
from tests.conftest import make_settings
from tests.portal_support import daemon_intake, form_token, link_in, sent_emails, submit_form
from tests.web_support import app  # noqa: F401
from webadmin import create_app


def test_form_ticket_is_opened_only_after_confirmation(app, settings, mail) -> None:
    client = app.test_client()
    response = submit_form(client, subject="Printer offline", text="The office printer shows error 42.")
    assert response.status_code == 200 and "Check your email" in response.get_data(as_text=True)
    assert daemon_intake(settings) == 0  # nothing enters the pipeline before the address is confirmed
    assert Ticket.objects.count() == 0
    [confirmation] = sent_emails(settings, mail, 1)
    assert confirmation["To"] == "ada@customer.test"
    assert "Printer offline" not in confirmation.as_string()  # the address may be a stranger's: no echo
    path = link_in(confirmation, "/portal/confirm/")

    other = app.test_client()  # the link is opened in the mail client's browser: no cookies from the form
    assert "Confirm and send" in other.get(path).get_data(as_text=True)
    assert WebSubmission.objects.get().state == "unconfirmed"  # opening the link (a mail scanner) confirms nothing
    confirmed = other.post(path, data={"form_token": form_token(other, path)})
    page = confirmed.get_data(as_text=True)
    assert confirmed.status_code == 200, page
    number = WebSubmission.objects.get().ticket_number
    assert f"ticket #{number}" in page

    assert daemon_intake(settings) == 1
    ticket = Ticket.objects.get(number=number)
    assert ticket.subject == "Printer offline" and ticket.requester_email == "ada@customer.test"
    assert ticket.triage.state == "pending"  # triage and routing pick it up like an emailed ticket
    [entry] = TicketMessage.objects(ticket_number=number)
    assert "error 42" in entry.text and entry.from_name == "Ada Lovelace"
    assert MessageLedger.lookup(ticket.source_message_id).outcome == "created"
    ack = mail.wait_for_sink(2)[1]
    assert ack["Subject"].startswith(f"[#{number}]") and ack["To"] == "ada@customer.test"

    listing = other.get("/portal/").get_data(as_text=True)  # confirming signed the customer in
    assert f"#{number}" in listing and "Printer offline" in listing
    assert daemon_intake(settings) == 0  # ingested once


def test_reused_and_expired_confirmation_links(app, settings, mail) -> None:
    client = app.test_client()
    submit_form(client, email="first@customer.test")
    submit_form(client, email="second@customer.test")
    first, second = sent_emails(settings, mail, 2)
    reused = link_in(first, "/portal/confirm/")
    assert client.post(reused, data={"form_token": form_token(client, reused)}).status_code == 200
    again = client.post(reused, data={"form_token": form_token(client)})
    assert again.status_code == 409 and "already used" in again.get_data(as_text=True)
    assert client.get(reused).status_code == 409

    expired = link_in(second, "/portal/confirm/")
    past = dt.datetime(2000, 1, 1)
    WebSubmission.objects(requester_email="second@customer.test").update(set__expires_at=past)
    assert client.get(expired).status_code == 410
    response = client.post(expired, data={"form_token": form_token(client)})
    assert response.status_code == 410 and "expired" in response.get_data(as_text=True)
    assert daemon_intake(settings) == 1
    assert [t.requester_email for t in Ticket.objects] == ["first@customer.test"]
    assert mail.wait_for_sink(3)[2]["To"] == "first@customer.test"  # the expired one is never acknowledged


def test_honeypot_and_missing_token_store_nothing(app, settings, mail) -> None:
    client = app.test_client()
    assert "Check your email" in submit_form(client, website="http://spam.example").get_data(as_text=True)
    forged = client.post("/portal/new", data={"email": "ada@customer.test", "subject": "s", "text": "t"})
    assert forged.status_code == 403
    cross_site = client.post(
        "/portal/new",
        data={"email": "a@customer.test", "subject": "s", "text": "t", "form_token": form_token(client)},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert cross_site.status_code == 403
    assert WebSubmission.objects.count() == 0
    assert sent_emails(settings, mail, 0) == []


def test_bad_input_is_a_clear_page(app, settings) -> None:
    client = app.test_client()
    for fields, message in (
        ({"email": "not-an-address"}, "valid email address"),
        ({"email": "support@example.test"}, "not ours"),
        ({"subject": "   "}, "subject"),
        ({"text": ""}, "describe"),
    ):
        response = submit_form(client, **fields)
        assert response.status_code == 422 and message in response.get_data(as_text=True), fields
    assert WebSubmission.objects.count() == 0


def test_per_address_and_per_client_limits(db, mail_server) -> None:
    settings = make_settings(
        db, mail_server, portal_submissions_per_address_hour=2, portal_submissions_per_client_hour=3
    )
    app = create_app(settings)
    client = app.test_client()
    _record, key = create_api_key("shop", ["tickets:create"], "admin@example.test")
    body = {"subject": "Order 1", "description": "Where is it?", "requester_email": "same@customer.test"}
    for _ in range(3):  # an integration's tickets for the address do not use up its owner's web-form quota
        assert client.post("/api/tickets", json=body, headers={"Authorization": f"Bearer {key}"}).status_code == 201
    codes = [submit_form(client, email="same@customer.test").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert submit_form(client, email="another@customer.test").status_code == 200
    too_many = submit_form(client, email="third@customer.test")  # the client's 4th within the hour
    assert too_many.status_code == 429 and "Too many" in too_many.get_data(as_text=True)
    assert WebSubmission.objects(source="web").count() == 3


def test_confirming_never_signs_staff_in(app, settings, mail) -> None:
    User(email="mod@customer.test", role="moderator").save()
    client = app.test_client()
    submit_form(client, email="mod@customer.test")
    [confirmation] = sent_emails(settings, mail, 1)
    path = link_in(confirmation, "/portal/confirm/")
    response = client.post(path, data={"form_token": form_token(client, path)})
    assert response.status_code == 200
    assert client.get_cookie("access_token_cookie") is None  # staff accounts need their password


def test_portal_link_tokens_are_not_written_to_access_logs_in_full() -> None:
    from models.links import redact_status_path

    token = "Zx9" * 14
    for path in (f"/portal/confirm/{token}", f"/portal/sign-in/{token}?a=1", f"/portal/from-status/{token}"):
        line = redact_status_path(f'"POST {path} HTTP/1.1" 200')
        assert token not in line and token[:6] + "..." in line, line
    assert redact_status_path("/portal/tickets/12") == "/portal/tickets/12"
