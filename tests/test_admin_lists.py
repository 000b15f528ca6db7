# ruff: noqa: F811 - pytest fixtures imported from tests.web_support
"""Flask-Admin's ticket, escalation and review lists: the right tickets in the right order, current after
writes made elsewhere (the daemon), whether served from the in-memory index or, with a search, the database."""

from __future__ import annotations

import datetime as dt
import re

from flask import Flask

from models import Ticket, TriageState, utcnow
from tests.web_support import app, cookie_login, make_ticket, make_user  # noqa: F401

ROW_SUBJECT = re.compile(r'<td class="col-subject">\s*(.*?)\s*</td>', re.S)


def _subjects(client, url: str) -> list[str]:  # noqa: ANN001
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return ROW_SUBJECT.findall(response.get_data(as_text=True))


def test_admin_lists_show_the_right_tickets_in_order_and_follow_outside_writes(app: Flask) -> None:
    make_user("boss@example.test", role="admin")
    now = utcnow()
    oldest = make_ticket(subject="Oldest", created_at=now - dt.timedelta(hours=3), triage=TriageState(state="done"))
    unsure = make_ticket(subject="Unsure", created_at=now - dt.timedelta(hours=2), triage=TriageState(state="review"))
    make_ticket(
        subject="Angry",
        created_at=now - dt.timedelta(hours=1),
        escalated=True,
        escalated_at=now - dt.timedelta(minutes=50),
        status="escalated",
    )
    client = app.test_client()
    cookie_login(client, "boss@example.test")

    assert _subjects(client, "/admin/tickets_admin/") == ["Angry", "Unsure", "Oldest"]
    assert _subjects(client, "/admin/escalations/") == ["Angry"]
    assert _subjects(client, "/admin/triage_review/") == ["Unsure"]
    assert _subjects(client, "/admin/tickets_admin/?search=unsure") == ["Unsure"]  # the database path

    # The daemon escalates one ticket and finishes the review of another.
    Ticket.objects(id=oldest.id).update_one(set__escalated=True, set__escalated_at=now, set__status="escalated")
    Ticket.objects(id=unsure.id).update_one(set__triage__state="done")
    assert _subjects(client, "/admin/escalations/") == ["Oldest", "Angry"]
    assert _subjects(client, "/admin/triage_review/") == []
