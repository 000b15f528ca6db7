# ruff: noqa: F811 - pytest fixtures imported from tests.web_support
"""POST /api/tickets: by API key and as a signed-in customer, idempotency, bad input, revoked keys, and the
keys' life in Flask-Admin (shown once, stored hashed, revoked)."""

from __future__ import annotations

import base64
import re

from models import AuditEvent, Ticket, TicketMessage, User
from models.api_keys import ApiKey, api_key_hash, create_api_key
from models.submissions import WebSubmission
from tests.portal_support import daemon_intake
from tests.web_support import PASSWORD, app, bearer, cookie_login, make_user  # noqa: F401

BODY = {"subject": "Disk 90% full", "description": "db-1 reports 90% disk use.", "requester_email": "ops@shop.test"}


def _key(scopes: list[str] | None = None) -> dict[str, str]:
    _record, key = create_api_key("monitoring", ["tickets:create"] if scopes is None else scopes, "admin@example.test")
    return {"Authorization": f"Bearer {key}"}


def test_key_creates_a_ticket_through_the_email_pipeline(app, settings, mail) -> None:
    client = app.test_client()
    encoded = base64.b64encode(b"90%").decode()
    attachment = {"filename": "df.txt", "content_type": "text/plain", "content_base64": encoded}
    response = client.post("/api/tickets", json={**BODY, "attachments": [attachment]}, headers=_key())
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert created["status"] == "received" and created["status_url"].startswith(settings.app_url + "/status/")
    assert Ticket.objects.count() == 0  # answered before the daemon ingests (and long before triage)
    assert daemon_intake(settings) == 1
    ticket = Ticket.objects.get(number=created["number"])
    assert ticket.requester_email == "ops@shop.test" and ticket.triage.state == "pending"
    [entry] = TicketMessage.objects(ticket_number=ticket.number)
    assert [a.filename for a in entry.attachments] == ["df.txt"]
    [ack] = mail.wait_for_sink(1)
    assert ack["To"] == "ops@shop.test" and f"[#{ticket.number}]" in ack["Subject"]
    status_path = "/" + created["status_url"].split("/", 3)[3]
    page = client.get(status_path)
    assert page.status_code == 200 and "Disk 90% full" in page.get_data(as_text=True)


def test_signed_in_customer_creates_for_their_own_address(app, settings) -> None:
    customer = make_user("ada@customer.test", role="user", password=None)
    response = app.test_client().post(
        "/api/tickets", json={**BODY, "requester_email": "someone@else.test"}, headers=bearer(app, customer)
    )
    assert response.status_code == 201, response.get_json()
    daemon_intake(settings)
    assert Ticket.objects.get(number=response.get_json()["number"]).requester_email == "ada@customer.test"


def test_idempotency_key_returns_the_first_ticket(app, settings) -> None:
    client = app.test_client()
    headers = {**_key(), "Idempotency-Key": "order-1234"}
    first = client.post("/api/tickets", json=BODY, headers=headers)
    again = client.post("/api/tickets", json=BODY, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json() and again.headers["Idempotent-Replayed"] == "true"
    changed = client.post("/api/tickets", json={**BODY, "subject": "Other"}, headers=headers)
    assert changed.status_code == 422 and "different request" in changed.get_json()["message"]
    other_key = client.post("/api/tickets", json=BODY, headers={**_key(), "Idempotency-Key": "order-1234"})
    assert other_key.get_json()["number"] != first.get_json()["number"]  # keys are per caller
    assert WebSubmission.objects.count() == 2
    assert daemon_intake(settings) == 2 and Ticket.objects.count() == 2


def test_bad_input_gets_a_4xx_with_a_message(app) -> None:
    client = app.test_client()
    headers = _key()
    cases = [
        ({"description": "x", "requester_email": "a@b.test"}, "subject"),
        ({**BODY, "subject": "   "}, "subject"),
        ({k: v for k, v in BODY.items() if k != "requester_email"}, "requester_email"),
        ({**BODY, "requester_email": "not an address"}, "valid email"),
        ({**BODY, "requester_email": "support@example.test"}, "not ours"),
        ({**BODY, "attachments": [{"filename": "a", "content_base64": "%%%"}]}, "base64"),
    ]
    for body, words in cases:
        response = client.post("/api/tickets", json=body, headers=headers)
        assert response.status_code == 422, (body, response.get_json())
        assert words in str(response.get_json()), (body, response.get_json())
    broken = client.post("/api/tickets", data="{", headers={**headers, "Content-Type": "application/json"})
    assert broken.status_code == 400
    assert WebSubmission.objects.count() == 0


def test_revoked_unknown_unscoped_keys_and_staff_are_refused(app) -> None:
    client = app.test_client()
    headers = _key()
    ApiKey.objects.update(set__revoked_at=ApiKey.objects.first().created_at)
    revoked = client.post("/api/tickets", json=BODY, headers=headers)
    assert revoked.status_code == 401 and "revoked" in revoked.get_json()["message"]
    unknown = client.post("/api/tickets", json=BODY, headers={"Authorization": "Bearer hdk_0000_nope"})
    assert unknown.status_code == 401
    assert client.post("/api/tickets", json=BODY, headers=_key(scopes=[])).status_code == 403
    assert client.post("/api/tickets", json=BODY).status_code == 401
    moderator = make_user("mod@example.test")
    assert client.post("/api/tickets", json=BODY, headers=bearer(app, moderator)).status_code == 403
    assert WebSubmission.objects.count() == 0


def test_admin_creates_a_key_shown_once_and_revokes_it(app, settings) -> None:
    make_user("admin@example.test", role="admin")
    client = app.test_client()
    csrf = cookie_login(client, "admin@example.test", PASSWORD)
    form = {"name": "shop", "scopes": "tickets:create", "csrf_token": csrf}
    created = client.post("/admin/api_keys/new/", data=form, follow_redirects=True)
    page = created.get_data(as_text=True)
    [key] = re.findall(r"hdk_[0-9a-f]{8}_[A-Za-z0-9_-]{43}", page)
    record = ApiKey.objects.get(name="shop")
    assert record.key_hash == api_key_hash(key) and key not in str(record.to_mongo())  # stored hashed only
    assert key not in client.get("/admin/api_keys/").get_data(as_text=True)  # never shown again
    api = app.test_client()
    assert api.post("/api/tickets", json=BODY, headers={"Authorization": f"Bearer {key}"}).status_code == 201
    client.post(
        "/admin/api_keys/action/",
        data={"action": "revoke", "rowid": [record.key_hash], "csrf_token": csrf},
    )
    assert ApiKey.objects.get(name="shop").revoked_at is not None
    assert api.post("/api/tickets", json=BODY, headers={"Authorization": f"Bearer {key}"}).status_code == 401
    assert {e.action for e in AuditEvent.objects} >= {"api_key_create", "api_key_revoke"}
    assert User.objects(role="user").count() == 0  # nothing was ingested yet: the daemon creates requesters


def test_a_short_api_ticket_is_triaged(app, settings) -> None:
    """Regression: a ticket whose language triage cannot guess (a short monitoring alert) failed triage with
    "found language override field in document with non-string type" (a null `language` under the text index)."""
    from triage.jobs import triage_job

    response = app.test_client().post(
        "/api/tickets", json={**BODY, "subject": "Disk 7 above 90%", "description": "db-7: 91%"}, headers=_key()
    )
    assert response.status_code == 201
    daemon_intake(settings)
    triage_job(settings)
    ticket = Ticket.objects.get(number=response.get_json()["number"])
    assert ticket.triage.state in ("done", "review"), ticket.triage.last_error


def test_the_endpoint_is_in_the_openapi_document(app) -> None:
    spec = app.test_client().get("/api/openapi.json").get_json()
    operations = spec["paths"]["/api/tickets"]
    assert {"get", "post"} <= set(operations)
    post = operations["post"]
    assert "201" in post["responses"] and {"Idempotency-Key"} <= {p["name"] for p in post.get("parameters", [])}
    assert "apiKey" in spec["components"]["securitySchemes"]


def test_a_crash_during_intake_creates_no_second_ticket_or_acknowledgement(app, settings, mail) -> None:
    """The daemon died after storing the ticket but before marking the submission done: the retry finishes
    the same ticket and sends nothing twice."""
    from daemon.web_intake import ingest_submission
    from models import OutboundEmail

    response = app.test_client().post("/api/tickets", json=BODY, headers=_key())
    submission = WebSubmission.objects.get()
    first = ingest_submission(submission, settings)  # ... and the process died here, before `finish`
    assert first.describe().startswith("created")
    assert daemon_intake(settings) == 1  # the lease expired (here: never taken); the job runs it again
    assert Ticket.objects.count() == 1 and Ticket.objects.get().number == response.get_json()["number"]
    assert OutboundEmail.objects(kind="ack").count() == 1
    assert WebSubmission.objects.get().outcome.startswith("duplicate")
    assert len(mail.wait_for_sink(1)) == 1
