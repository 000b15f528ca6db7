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

from pymongo.errors import DuplicateKeyError

from models import Ticket, ticket_index, utcnow
from models.ticket_index import TicketRow

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


def is_due(state: str, next_attempt_at: dt.datetime | None, lease_until: dt.datetime | None, now: dt.datetime) -> bool:
    """Waiting and its time has come, or running under a lease that expired (its worker died)."""
    if state == "pending":
        return next_attempt_at is None or next_attempt_at <= now
    return state == "running" and lease_until is not None and lease_until < now


def _due_rows(now: dt.datetime) -> list[TicketRow]:
    """Due tickets by the daemon's in-memory index (a query here would read every ticket on FerretDB)."""
    rows = [
        r
        for r in ticket_index.shared().rows()
        if is_due(r.triage_state, r.triage_next_attempt_at, r.triage_lease_until, now)
    ]
    return sorted(rows, key=lambda r: (r.triage_next_attempt_at or r.created_at, r.number))


def due_count(now: dt.datetime | None = None) -> int:
    return len(_due_rows(now or utcnow()))


def claim_due(
    worker: str, limit: int = 20, now: dt.datetime | None = None, lease_seconds: int = LEASE_SECONDS
) -> list[Ticket]:
    """Claim up to `limit` due tickets for `worker`; a ticket another worker holds is skipped."""
    now = now or utcnow()
    claims = Ticket._get_db()[CLAIMS_COLLECTION]
    claimed: list[Ticket] = []
    for row in _due_rows(now)[: limit * 3]:
        if len(claimed) >= limit:
            break
        ticket = Ticket.objects(id=row.id).first()  # the index row may be a moment old: decide on the document
        if ticket is None:
            continue
        state = ticket.triage
        if not is_due(state.state, state.next_attempt_at, state.lease_until, now):
            continue
        generation, attempt = state.generation or 0, (state.attempts or 0) + 1
        try:
            claims.insert_one({"_id": f"{ticket.id}:{generation}:{attempt}", "worker": worker, "at": now})
        except DuplicateKeyError:
            continue  # someone else holds this attempt
        # The insert above is the arbiter; the update is by `_id` alone, the one filter FerretDB answers
        # from an index (a longer filter would read every ticket, and would not be atomic there either).
        Ticket.objects(id=ticket.id).update(
            set__triage__state="running",
            set__triage__attempts=attempt,
            set__triage__claimed_by=worker,
            set__triage__lease_until=now + dt.timedelta(seconds=lease_seconds),
            set__triage__started_at=now,
        )
        state.state, state.attempts, state.claimed_by = "running", attempt, worker
        state.lease_until, state.started_at = now + dt.timedelta(seconds=lease_seconds), now
        claimed.append(ticket)
    return claimed


def still_owned(ticket: Ticket, worker: str) -> bool:
    """True while `worker` still holds the attempt of `ticket` it claimed (no newer claim or re-triage)."""
    current = Ticket.objects(id=ticket.id).only("triage").first()
    if current is None:
        return False
    state = current.triage
    return (
        state.claimed_by == worker
        and state.attempts == ticket.triage.attempts
        and (state.generation or 0) == (ticket.triage.generation or 0)
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
    if not still_owned(ticket, worker):
        logger.warning("ticket #%s: lost its triage claim before recording a failure", ticket.number)
        return False
    Ticket.objects(id=ticket.id).update(**changes)
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
