# ruff: noqa: F811 - pytest fixtures imported from tests.web_support
"""GET /healthz for monitoring: open to anyone, JSON, and every figure follows the data it reports on."""

from __future__ import annotations

import datetime as dt
import socket

import mongoengine
import pytest
from imapclient.exceptions import LoginError

from daemon.outbox import retry_failed, send_one
from daemon.poller import poll_once
from models import MailboxCursor, OutboundEmail, TriageState, queue_email, utcnow
from tests.conftest import make_settings
from tests.support import MailStack
from tests.web_support import app, make_ticket  # noqa: F401
from triage.queue import request_retriage


def health(app) -> dict:  # noqa: ANN001 - a Flask app
    response = app.test_client().get("/healthz")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.is_json
    return response.get_json()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_healthy_empty_system(app) -> None:
    assert health(app) == {
        "status": "ok",
        "database": "ok",
        "last_poll_age_seconds": None,
        "last_poll_error": None,
        "triage_queue_depth": 0,
        "triage_oldest_untriaged_seconds": None,
        "triage_oldest_untriaged_number": None,
        "outbox_failed": 0,
        "outbox_queued": 0,
    }


def test_database_unreachable_is_503(app) -> None:
    mongoengine.disconnect()
    mongoengine.connect(
        db="helpdesk_test",
        host=f"mongodb://127.0.0.1:{closed_port()}/",
        serverSelectionTimeoutMS=300,
        uuidRepresentation="standard",
    )
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "error", "database": "unreachable"}


def test_poll_age_follows_the_mailbox_poller(app, settings, mail: MailStack) -> None:
    poll_once(settings)
    fresh = health(app)["last_poll_age_seconds"]
    assert fresh is not None and 0 <= fresh < 5

    # the daemon has not polled for ten minutes
    MailboxCursor.objects.update(set__last_poll_at=utcnow() - dt.timedelta(minutes=10))
    stale = health(app)["last_poll_age_seconds"]
    assert 600 <= stale < 605

    poll_once(settings)
    assert health(app)["last_poll_age_seconds"] < 5


def test_failed_login_shows_as_the_poll_error_until_a_poll_succeeds(app, db, settings, mail: MailStack) -> None:
    """Regression: a failed poll (here Dovecot refusing the password) left `last_poll_error` empty."""
    poll_once(settings)
    MailboxCursor.objects.update(set__last_poll_at=utcnow() - dt.timedelta(minutes=10))
    wrong = make_settings(db, mail, imap_password="Wrong-Secret-123")
    with pytest.raises(LoginError):
        poll_once(wrong)
    body = health(app)
    error = body["last_poll_error"]
    assert error is not None and "LoginError" in error and "Wrong-Secret-123" not in error
    assert len(error) <= 200 and "\n" not in error
    failed_at = dt.datetime.strptime(error.split(" ", 1)[0], "%Y-%m-%dT%H:%M:%SZ")
    assert abs((utcnow() - failed_at).total_seconds()) < 5  # when it failed
    assert 600 <= body["last_poll_age_seconds"] < 605  # a failed poll is not a poll

    poll_once(settings)
    body = health(app)
    assert body["last_poll_error"] is None and body["last_poll_age_seconds"] < 5


def test_poll_age_and_error_come_from_the_latest_poll(app) -> None:
    now = utcnow()
    MailboxCursor(mailbox="old@host:143/INBOX", last_poll_at=now - dt.timedelta(hours=2), last_error="gone").save()
    body = health(app)
    assert 7200 <= body["last_poll_age_seconds"] < 7205
    assert body["last_poll_error"] == "gone"

    MailboxCursor(mailbox="new@host:143/INBOX", last_poll_at=now - dt.timedelta(seconds=30), last_error="").save()
    body = health(app)
    assert 30 <= body["last_poll_age_seconds"] < 35
    assert body["last_poll_error"] is None

    MailboxCursor.objects(mailbox="new@host:143/INBOX").update_one(set__last_error="LOGIN failed")
    assert health(app)["last_poll_error"] == "LOGIN failed"


def test_triage_queue_depth_counts_tickets_waiting_for_triage(app) -> None:
    make_ticket()  # a new ticket waits for triage
    assert health(app)["triage_queue_depth"] == 1
    done = make_ticket(triage=TriageState(state="done", generation=1))
    make_ticket(triage=TriageState(state="review"))
    assert health(app)["triage_queue_depth"] == 1

    request_retriage(done)
    assert health(app)["triage_queue_depth"] == 2


def test_oldest_untriaged_ticket_age_shows_until_triage_reaches_it(app, settings) -> None:
    """No ticket waits silently: the oldest ticket not yet triaged (pending or running) and its age."""
    from triage.jobs import triage_job

    now = utcnow()
    make_ticket(created_at=now - dt.timedelta(days=3), triage=TriageState(state="done"))  # triaged long ago
    oldest = make_ticket(created_at=now - dt.timedelta(minutes=7))
    make_ticket(created_at=now - dt.timedelta(minutes=2))
    body = health(app)
    assert body["triage_oldest_untriaged_number"] == oldest.number
    assert 420 <= body["triage_oldest_untriaged_seconds"] < 430

    triage_job(settings)  # the daemon's next pass
    body = health(app)
    assert body["triage_oldest_untriaged_seconds"] is None and body["triage_oldest_untriaged_number"] is None


@pytest.mark.usefixtures("mail")
def test_outbox_counts_follow_failed_sent_and_retried_emails(app, db, settings, mail_server: MailStack) -> None:
    def notification(subject: str) -> OutboundEmail:
        return queue_email(
            kind="notification", to=["mod@example.test"], subject=subject, text="hello", domain="example.test"
        )

    doomed, fine = notification("SMTP is down"), notification("SMTP is up")
    assert (health(app)["outbox_queued"], health(app)["outbox_failed"]) == (2, 0)

    unreachable = make_settings(db, mail_server, mail_port=closed_port(), outbox_max_attempts=1)
    assert send_one(doomed.id, unreachable) is False
    assert OutboundEmail.objects.get(id=doomed.id).state == "failed"
    assert (health(app)["outbox_queued"], health(app)["outbox_failed"]) == (1, 1)

    assert send_one(fine.id, settings) is True
    assert (health(app)["outbox_queued"], health(app)["outbox_failed"]) == (0, 1)

    assert retry_failed(doomed.id)  # what the admin's "Retry" does
    assert (health(app)["outbox_queued"], health(app)["outbox_failed"]) == (1, 0)


def test_a_mailbox_that_never_logged_in_shows_its_error(app, db, mail: MailStack) -> None:
    """A daemon configured with the wrong password from the start must not look merely idle."""
    wrong = make_settings(db, mail, imap_password="Wrong-From-The-Start-1")
    with pytest.raises(LoginError):
        poll_once(wrong)
    body = health(app)
    assert body["last_poll_age_seconds"] is None
    assert "LoginError" in body["last_poll_error"] and "Wrong-From-The-Start-1" not in body["last_poll_error"]
