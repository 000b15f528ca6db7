"""Database reachable, age of the last mailbox poll, triage queue depth, outbox failures."""

from __future__ import annotations

import datetime as dt
import logging

import mongoengine
from flask import jsonify
from werkzeug.wrappers import Response

from models import MailboxCursor, utcnow
from webadmin.health import bp
from webadmin.tickets import ticket_index

logger = logging.getLogger(__name__)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    try:
        mongoengine.get_db().command("ping")
    except Exception as exc:  # any failure here means "not healthy", which is the answer
        logger.error("health check: database unreachable: %s", exc)
        return jsonify(status="error", database="unreachable"), 503
    cursors = list(MailboxCursor.objects.only("last_poll_at", "last_error", "updated_at"))  # one per mailbox
    polled = [c.last_poll_at for c in cursors if c.last_poll_at]
    poll_age = round((utcnow() - max(polled)).total_seconds(), 1) if polled else None
    # the error of the mailbox touched last, including one that has never polled successfully
    latest = max(cursors, key=lambda c: c.updated_at or c.last_poll_at or dt.datetime.min, default=None)
    outbox = ticket_index().outbox_rows()  # unsent emails only, kept in memory (see models/ticket_index.py)
    body = {
        "status": "ok",
        "database": "ok",
        "last_poll_age_seconds": poll_age,
        "last_poll_error": (latest.last_error or None) if latest else None,
        # from the panel's in-memory ticket list: a count over the tickets collection is a full scan here
        "triage_queue_depth": sum(1 for row in ticket_index().rows() if row.triage_state == "pending"),
        "outbox_failed": sum(1 for row in outbox if row.state == "failed"),
        "outbox_queued": sum(1 for row in outbox if row.state == "queued"),
    }
    return jsonify(body), 200
