"""Database reachable, age of the last mailbox poll (and, with several support mailboxes, each one's state),
triage queue depth and its oldest ticket's age, outbox failures."""

from __future__ import annotations

import datetime as dt
import logging

import mongoengine
from flask import current_app, jsonify
from werkzeug.wrappers import Response

from models import MailboxCursor, OutboundEmail, Ticket, utcnow
from models.mailboxes import SupportMailbox, mailbox_healthy, mailbox_states
from models.oauth import grant_states
from triage.queue import oldest_untriaged
from webadmin.health import bp

logger = logging.getLogger(__name__)


def outbox_counts() -> dict[str, int]:
    """Unsent emails by state: one `$group` over the `state` index's queued/failed entries."""
    pipeline = [{"$match": {"state": {"$in": ["queued", "failed"]}}}, {"$group": {"_id": "$state", "n": {"$sum": 1}}}]
    return {row["_id"]: row["n"] for row in OutboundEmail._get_collection().aggregate(pipeline)}


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
    outbox = outbox_counts()
    oldest = oldest_untriaged()  # no ticket waits silently: (number, age) of the oldest one not yet triaged
    body = {
        "status": "ok",
        "database": "ok",
        "last_poll_age_seconds": poll_age,
        "last_poll_error": (latest.last_error or None) if latest else None,
        "triage_queue_depth": Ticket.objects(triage__state="pending").count(),  # index triage.state, ...
        "triage_oldest_untriaged_seconds": oldest[1] if oldest else None,
        "triage_oldest_untriaged_number": oldest[0] if oldest else None,
        "outbox_failed": outbox.get("failed", 0),
        "outbox_queued": outbox.get("queued", 0),
    }
    grants = grant_states()  # OAuth2 mailboxes only: state, the provider's error, what to do
    if grants:
        body["mail_grants"] = grants
        body["status"] = "ok" if all(g["state"] == "ok" for g in grants) else "degraded"
    if SupportMailbox.objects.only("address").first() is not None:  # several support addresses (issue 12)
        body["mailboxes"] = mailbox_states(current_app.extensions["settings"])
        if not all(mailbox_healthy(state) for state in body["mailboxes"]):
            body["status"] = "degraded"
    return jsonify(body), 200
