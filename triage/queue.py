"""The durable triage queue: claims with leases, exponential back-off, and a final escalation.

A claim is the insert of a document whose `_id` is `ticket:generation:attempt`; the storage enforces
`_id` uniqueness, so two workers can never hold the same attempt (FerretDB's read-modify-write is racy).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import uuid

from mongoengine.queryset.visitor import Q
from pymongo.errors import DuplicateKeyError

from models import Ticket, utcnow

logger = logging.getLogger(__name__)

CLAIMS_COLLECTION = "triage_claims"
LEASE_SECONDS = 300
BACKOFF_BASE_SECONDS = 30
BACKOFF_MAX_SECONDS = 3600


def worker_id() -> str:
    """A name unique to this process and call site (host:pid:random)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def backoff_seconds(attempts: int, retry_after: float = 0.0) -> float:
    """30 s, 60 s, 120 s, ... capped at an hour, and never sooner than the server asked."""
    delay = min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_MAX_SECONDS)
    return max(float(delay), retry_after)


def _due(now: dt.datetime) -> Q:
    pending = Q(triage__state="pending", triage__next_attempt_at__lte=now)
    expired = Q(triage__state="running", triage__lease_until__lt=now)
    return pending | expired


def due_count(now: dt.datetime | None = None) -> int:
    return Ticket.objects(_due(now or utcnow())).count()


def claim_due(
    worker: str, limit: int = 20, now: dt.datetime | None = None, lease_seconds: int = LEASE_SECONDS
) -> list[Ticket]:
    """Claim up to `limit` due tickets for `worker`; a ticket another worker holds is skipped."""
    now = now or utcnow()
    claims = Ticket._get_db()[CLAIMS_COLLECTION]
    claimed: list[Ticket] = []
    candidates = Ticket.objects(_due(now)).order_by("triage.next_attempt_at").limit(limit * 3)
    for ticket in candidates:
        if len(claimed) >= limit:
            break
        state = ticket.triage
        generation, attempt = state.generation or 0, (state.attempts or 0) + 1
        try:
            claims.insert_one({"_id": f"{ticket.id}:{generation}:{attempt}", "worker": worker, "at": now})
        except DuplicateKeyError:
            continue  # someone else holds this attempt
        updated = Ticket.objects(
            id=ticket.id, triage__generation=state.generation, triage__attempts=state.attempts
        ).update(
            set__triage__state="running",
            set__triage__attempts=attempt,
            set__triage__claimed_by=worker,
            set__triage__lease_until=now + dt.timedelta(seconds=lease_seconds),
            set__triage__started_at=now,
        )
        if updated:  # mirror the update locally instead of another round trip
            state.state, state.attempts, state.claimed_by = "running", attempt, worker
            state.lease_until, state.started_at = now + dt.timedelta(seconds=lease_seconds), now
            claimed.append(ticket)
    return claimed


def owned(ticket: Ticket, worker: str) -> Q:
    """The filter that matches `ticket` only while `worker` still holds the attempt it claimed."""
    return Q(id=ticket.id, triage__claimed_by=worker, triage__attempts=ticket.triage.attempts) & Q(
        triage__generation=ticket.triage.generation
    )


def release_with_failure(
    ticket: Ticket, worker: str, error: str, max_attempts: int, retry_after: float = 0.0, now: dt.datetime | None = None
) -> bool:
    """Record a failed attempt; returns True when attempts are used up (the caller escalates)."""
    now = now or utcnow()
    error = error.replace("\x00", "")[:500]
    attempts = ticket.triage.attempts or 0
    exhausted = attempts >= max_attempts
    changes: dict[str, object] = {
        "set__triage__last_error": error,
        "set__triage__lease_until": None,
        "set__triage__claimed_by": None,
    }
    if exhausted:
        changes.update(set__triage__state="failed", set__triage__completed_at=now)
    else:
        changes.update(
            set__triage__state="pending",
            set__triage__next_attempt_at=now + dt.timedelta(seconds=backoff_seconds(attempts, retry_after)),
        )
    if not Ticket.objects(owned(ticket, worker)).update(**changes):
        logger.warning("ticket #%s: lost its triage claim before recording a failure", ticket.number)
        return False
    logger.info("ticket #%s: triage attempt %s failed: %s", ticket.number, attempts, error)
    ticket.reload()
    return exhausted


def request_retriage(ticket: Ticket) -> None:
    """Queue `ticket` for a fresh triage now (attempts 0, a new claim generation)."""
    now = utcnow()
    Ticket.objects(id=ticket.id).update(
        set__triage__state="pending",
        set__triage__attempts=0,
        set__triage__generation=(ticket.triage.generation or 0) + 1,
        set__triage__next_attempt_at=now,
        set__triage__lease_until=None,
        set__triage__claimed_by=None,
        set__triage__last_error=None,
        set__triage__review_reason=None,
    )
    ticket.reload()
