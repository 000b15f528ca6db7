# ruff: noqa: F811 - pytest fixtures imported from tests.web_support
"""The customer portal: sign-in links, every ticket of the address, reply with attachments, close, reopen,
and nothing of another customer's."""

from __future__ import annotations

import datetime as dt
import io

from daemon.ingest import ingest
from models import OutboundEmail, Ticket, TicketMessage, User
from models.portal_links import PortalSignInLink
from models.submissions import WebSubmission
from tests.portal_support import daemon_intake, form_token, link_in, sent_emails
from tests.support import make_email
from tests.web_support import app, cookie_login, make_user, status_link_token  # noqa: F401
from webadmin import ticket_actions


def _email_ticket(settings, subject: str, sender: str = "ada@customer.test") -> Ticket:  # noqa: ANN001
    message = make_email(subject=subject, sender=sender, body=f"About {subject}.")
    ingest(message.as_bytes(), settings, send_ack=False)
    return Ticket.objects(source_message_id=message["Message-ID"]).get()


def _sign_in(client, settings, mail, address: str, already: int = 0) -> None:  # noqa: ANN001
    """Ask for a sign-in link, take it from the sink and use it."""
    token = form_token(client, "/portal/sign-in")
    response = client.post("/portal/sign-in", data={"email": address, "form_token": token})
    assert response.status_code == 200
    message = sent_emails(settings, mail, already + 1)[already]
    path = link_in(message, "/portal/sign-in/")
    used = client.post(path, data={"form_token": form_token(client, path)})
    assert used.status_code == 302 and used.headers["Location"] == "/portal/", used.get_data(as_text=True)


def test_sign_in_link_shows_every_ticket_of_the_address_only(app, settings, mail) -> None:
    first = _email_ticket(settings, "VPN drops")
    second = _email_ticket(settings, "Invoice twice")
    foreign = _email_ticket(settings, "FOREIGN-SECRET", sender="bob@customer.test")
    TicketMessage(
        ticket=first, ticket_number=first.number, kind="note", public=False, message_id="<n@x>", text="NOTE-SECRET"
    ).save()
    client = app.test_client()
    _sign_in(client, settings, mail, "ada@customer.test")
    listing = client.get("/portal/").get_data(as_text=True)
    assert "VPN drops" in listing and "Invoice twice" in listing and "FOREIGN-SECRET" not in listing
    page = client.get(f"/portal/tickets/{first.number}").get_data(as_text=True)
    assert "About VPN drops." in page and "NOTE-SECRET" not in page
    assert client.get(f"/portal/tickets/{second.number}").status_code == 200
    assert client.get(f"/portal/tickets/{foreign.number}").status_code == 404
    csrf = client.get_cookie("csrf_access_token").value
    for action in ("reply", "close", "reopen"):
        response = client.post(f"/portal/tickets/{foreign.number}/{action}", data={"csrf_token": csrf, "text": "x"})
        assert response.status_code == 404, action
    assert Ticket.objects.get(id=foreign.id).status == "new"


def test_sign_in_links_are_single_use_and_expire(app, settings, mail) -> None:
    _email_ticket(settings, "VPN drops")
    client = app.test_client()
    token_page = form_token(client, "/portal/sign-in")
    client.post("/portal/sign-in", data={"email": "ada@customer.test", "form_token": token_page})
    client.post("/portal/sign-in", data={"email": "nobody@customer.test", "form_token": token_page})
    [message] = sent_emails(settings, mail, 1)  # an unknown address gets the same page and no email
    path = link_in(message, "/portal/sign-in/")
    assert client.post(path, data={"form_token": form_token(client, path)}).status_code == 302
    fresh = app.test_client()
    assert fresh.get(path).status_code == 409
    assert fresh.post(path, data={"form_token": form_token(fresh, "/portal/sign-in")}).status_code == 409
    client.post("/portal/sign-in", data={"email": "ada@customer.test", "form_token": token_page})
    second = link_in(sent_emails(settings, mail, 2)[1], "/portal/sign-in/")
    PortalSignInLink.objects(used_at=None).update(set__expires_at=dt.datetime(2000, 1, 1))
    assert fresh.get(second).status_code == 410
    assert fresh.get("/portal/").headers["Location"] == "/portal/sign-in"


def test_reply_with_attachment_joins_the_thread_and_notifies_the_assignee(app, settings, mail) -> None:
    moderator = make_user("mod@example.test")
    ticket = _email_ticket(settings, "VPN drops")
    ticket_actions.assign(ticket, moderator, moderator, "mine", settings)
    OutboundEmail.objects.delete()
    client = app.test_client()
    _sign_in(client, settings, mail, "ada@customer.test")
    csrf = client.get_cookie("csrf_access_token").value
    refused = client.post(f"/portal/tickets/{ticket.number}/reply", data={"text": "no token"})
    assert refused.status_code == 403
    response = client.post(
        f"/portal/tickets/{ticket.number}/reply",
        data={"csrf_token": csrf, "text": "Here is the log.", "attachments": (io.BytesIO(b"line 1\n"), "vpn.log")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    assert daemon_intake(settings) == 1
    reply = TicketMessage.objects(ticket_number=ticket.number, kind="inbound").order_by("-created_at").first()
    assert reply.new_text.strip() == "Here is the log." and reply.from_address == "ada@customer.test"
    assert reply.in_reply_to == ticket.source_message_id  # threaded like an emailed reply
    assert [a.filename for a in reply.attachments] == ["vpn.log"] and reply.attachments[0].file.read() == b"line 1\n"
    assert Ticket.objects.get(id=ticket.id).message_count == 2
    [notice] = OutboundEmail.objects(kind="notification", to="mod@example.test")
    assert f"#{ticket.number}" in notice.subject
    page = client.get(f"/portal/tickets/{ticket.number}").get_data(as_text=True)
    assert "Here is the log." in page and "vpn.log" in page
    download = client.get(f"/portal/tickets/{ticket.number}/attachments/{reply.id}/0")
    assert download.status_code == 200 and download.data == b"line 1\n"


def test_close_and_reopen_within_the_window(app, settings, mail) -> None:
    ticket = _email_ticket(settings, "VPN drops")
    client = app.test_client()
    _sign_in(client, settings, mail, "ada@customer.test")
    csrf = client.get_cookie("csrf_access_token").value
    assert client.post(f"/portal/tickets/{ticket.number}/close", data={"csrf_token": csrf}).status_code == 302
    assert Ticket.objects.get(id=ticket.id).status == "closed"
    event = TicketMessage.objects(ticket_number=ticket.number, kind="event").get()
    assert not event.public and "Closed by the requester" in event.text
    assert "Reopen this request" in client.get(f"/portal/tickets/{ticket.number}").get_data(as_text=True)
    assert client.post(f"/portal/tickets/{ticket.number}/reopen", data={"csrf_token": csrf}).status_code == 302
    assert Ticket.objects.get(id=ticket.id).status == "open"
    too_late = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=settings.portal_reopen_days + 1)
    Ticket.objects(id=ticket.id).update_one(set__status="resolved", set__resolved_at=too_late)
    client.post(f"/portal/tickets/{ticket.number}/reopen", data={"csrf_token": csrf})
    assert Ticket.objects.get(id=ticket.id).status == "resolved"
    assert "Reopen this request" not in client.get(f"/portal/tickets/{ticket.number}").get_data(as_text=True)


def test_status_link_leads_to_the_portal_through_the_requesters_mailbox(app, settings, mail) -> None:
    ticket = _email_ticket(settings, "VPN drops")
    token = status_link_token(settings, ticket)
    client = app.test_client()
    page = client.get(f"/portal/from-status/{token}")
    assert page.status_code == 200 and "VPN drops" not in page.get_data(as_text=True)
    client.post(f"/portal/from-status/{token}", data={"form_token": form_token(client, f"/portal/from-status/{token}")})
    [message] = sent_emails(settings, mail, 1)
    assert message["To"] == "ada@customer.test"
    path = link_in(message, "/portal/sign-in/")
    assert client.post(path, data={"form_token": form_token(client, path)}).status_code == 302
    assert client.get(f"/portal/from-status/{token}").headers["Location"] == f"/portal/tickets/{ticket.number}"
    assert client.get("/portal/from-status/not-a-token").status_code == 404


def test_staff_are_sent_to_their_queue_and_sign_out_ends_the_session(app, settings, mail) -> None:
    _email_ticket(settings, "VPN drops")
    client = app.test_client()
    _sign_in(client, settings, mail, "ada@customer.test")
    csrf = client.get_cookie("csrf_access_token").value
    assert client.get("/queue").status_code == 403  # a customer session is no staff session
    assert client.post("/portal/sign-out", data={"csrf_token": csrf}).status_code == 302
    assert client.get("/portal/").status_code == 302
    assert User.objects.get(email="ada@customer.test").role == "user"


def test_a_signed_in_customer_opens_a_request_without_another_confirmation(app, settings, mail) -> None:
    _email_ticket(settings, "VPN drops")
    client = app.test_client()
    _sign_in(client, settings, mail, "ada@customer.test")
    token, csrf = form_token(client), client.get_cookie("csrf_access_token").value
    form = {"subject": "Second printer", "text": "Also broken.", "email": "someone@else.test", "form_token": token}
    assert client.post("/portal/new", data=form).status_code == 403  # a session's form needs its CSRF token
    response = client.post("/portal/new", data={**form, "csrf_token": csrf})
    assert response.status_code == 200 and "Request received" in response.get_data(as_text=True)
    assert daemon_intake(settings) == 1
    ticket = Ticket.objects.get(subject="Second printer")
    assert ticket.requester_email == "ada@customer.test"  # the session's address, not the one typed
    assert "Second printer" in client.get("/portal/").get_data(as_text=True)


def test_portal_reply_reopens_a_pending_ticket_and_notifies_the_assignee_once(app, settings, mail) -> None:
    moderator = make_user("mod@example.test")
    ticket = _email_ticket(settings, "VPN drops")
    client = app.test_client()
    _sign_in(client, settings, mail, "ada@customer.test")
    ticket_actions.assign(ticket, moderator, moderator, "mine", settings)
    ticket_actions.reply(ticket, moderator, "Which client version do you run?", settings)
    assert Ticket.objects.get(id=ticket.id).status == "pending"  # waiting on the customer
    csrf = client.get_cookie("csrf_access_token").value
    client.post(f"/portal/tickets/{ticket.number}/reply", data={"csrf_token": csrf, "text": "Version 5.2."})
    assert daemon_intake(settings) == 1
    assert Ticket.objects.get(id=ticket.id).status == "open"
    [event] = TicketMessage.objects(ticket_number=ticket.number, kind="event", text__contains="pending -> open")
    assert event.text == "status pending -> open (customer replied) by ada@customer.test"
    [notice] = OutboundEmail.objects(kind="notification", to="mod@example.test")
    assert "Customer replied" in notice.subject
    # the daemon crashed before it marked the submission done: it ingests it again, and queues nothing more
    WebSubmission.objects(kind="reply").update(set__state="ready", set__ready_at=dt.datetime(2000, 1, 1))
    assert daemon_intake(settings) == 1
    assert OutboundEmail.objects(kind="notification", to="mod@example.test").count() == 1
    assert TicketMessage.objects(ticket_number=ticket.number, kind="inbound").count() == 2
    staff = app.test_client()
    cookie_login(staff, "mod@example.test")
    timeline = staff.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "status pending -&gt; open (customer replied) by ada@customer.test" in timeline
