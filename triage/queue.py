"""The durable triage queue: claims with leases (models/claims.py), exponential back-off, and a final escalation.

A claim is one atomic update of the ticket's `triage` (pending and due, or running under an expired lease ->
running, owner, lease, attempts + 1); recording a result or a failure is conditional on still holding it.
"""

from __future__ import annotations

import datetime as dt
import logging

from models import Ticket, utcnow
from models.claims import claim_batch, finish, make_owner_id
from models.tickets import TRIAGE_LEASE

logger = logging.getLogger(__name__)

LEASE_SECONDS = 300
BACKOFF_BASE_SECONDS = 30
BACKOFF_MAX_SECONDS = 3600


def worker_id() -> str:
    """A name unique to this process and call site (host:pid:random)."""
    return make_owner_id()


def backoff_seconds(attempts: int, retry_after: float = 0.0) -> float:
    """30 s, 60 s, 120 s, ... capped at an hour, and never sooner than the server asked."""
    delay = min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_MAX_SECONDS)
    return max(float(delay), retry_after)


def due_filters(now: dt.datetime) -> list[dict]:
    """Pending and due, or running under a lease that expired (its worker died); each served by an index."""
    return [
        {"triage.state": "pending", "triage.next_attempt_at": {"$lte": now}},
        {"triage.state": "running", "triage.lease_until": {"$lt": now}},
    ]


def due_count(now: dt.datetime | None = None) -> int:
    now = now or utcnow()
    return sum(Ticket.objects(__raw__=ready).count() for ready in due_filters(now))


def waiting_count() -> int:
    """Tickets waiting for a first result or a retry (pending, due or in back-off): a count on the state index."""
    return Ticket.objects(triage__state="pending").count()


def oldest_untriaged(now: dt.datetime | None = None) -> tuple[int, float] | None:
    """(number, age in seconds) of the oldest ticket still pending or running triage; None when there is none.

    Numbers grow with arrival, so the lowest pending/running number is the oldest: the (triage.state, number)
    index. A ticket sent back for re-triage counts from its creation.
    """
    found = (
        Ticket.objects(triage__state__in=["pending", "running"]).order_by("number").only("number", "created_at").first()
    )
    if found is None:
        return None
    age = ((now or utcnow()) - (found.created_at or utcnow())).total_seconds()
    return found.number, round(max(age, 0.0), 1)


def claim_due(
    worker: str, limit: int = 20, now: dt.datetime | None = None, lease_seconds: int = LEASE_SECONDS
) -> list[Ticket]:
    """Claim up to `limit` due tickets for `worker`, longest waiting first: one atomic batch claim per filter.

    `worker` must be unique to the caller (worker_id()); the claims are conditional updates, so racing
    workers never take the same ticket.
    """
    now = now or utcnow()
    claimed: list[Ticket] = []
    for ready in due_filters(now):
        if len(claimed) >= limit:
            break
        sort = [("triage.next_attempt_at", 1)] if ready["triage.state"] == "pending" else None
        claimed += claim_batch(
            Ticket,
            ready,
            worker,
            lease_seconds,
            limit - len(claimed),
            fields=TRIAGE_LEASE,
            set_fields={"triage.state": "running", "triage.started_at": now},
            inc={"triage.attempts": 1},
            sort=sort,
            now=now,
        )
    return claimed


def ownership(ticket: Ticket) -> dict:
    """The filter that matches `ticket` only while the attempt its worker claimed is still current."""
    generation = ticket.triage.generation or 0
    return {  # tickets stored before `generation` existed lack the field
        "triage.attempts": ticket.triage.attempts,
        "triage.generation": generation if generation else {"$in": [0, None]},
    }


def complete(ticket: Ticket, worker: str, set_fields: dict) -> bool:
    """Write `set_fields` and drop the claim, only while `worker` still holds this attempt."""
    return finish(Ticket, ticket.id, worker, fields=TRIAGE_LEASE, set_fields=set_fields, match=ownership(ticket))


def release_with_failure(
    ticket: Ticket, worker: str, error: str, max_attempts: int, retry_after: float = 0.0, now: dt.datetime | None = None
) -> bool:
    """Record a failed attempt; returns True when attempts are used up (the caller escalates)."""
    now = now or utcnow()
    error = error.replace("\x00", "")[:500]
    attempts = ticket.triage.attempts or 0
    exhausted = attempts >= max_attempts
    changes: dict[str, object] = {"triage.last_error": error}
    if exhausted:
        changes.update({"triage.state": "failed", "triage.completed_at": now})
    else:
        delay = dt.timedelta(seconds=backoff_seconds(attempts, retry_after))
        changes.update({"triage.state": "pending", "triage.next_attempt_at": now + delay})
    if not complete(ticket, worker, changes):
        logger.warning("ticket #%s: lost its triage claim before recording a failure", ticket.number)
        return False
    logger.info("ticket #%s: triage attempt %s failed: %s", ticket.number, attempts, error)
    ticket.reload()
    return exhausted


def request_retriage(ticket: Ticket) -> None:
    """Queue `ticket` for a fresh triage now (attempts 0, a new generation: a worker still on it loses its claim)."""
    now = utcnow()
    Ticket.objects(id=ticket.id).update(
        set__triage__state="pending",
        set__triage__attempts=0,
        inc__triage__generation=1,
        set__triage__next_attempt_at=now,
        set__triage__lease_until=None,
        set__triage__claimed_by=None,
        set__triage__last_error=None,
        set__triage__review_reason=None,
    )
    ticket.reload()
