"""New tickets handed from intake to this daemon's triage job in memory, inserted already claimed.

With the offline model, triage of a new ticket needs nothing the intake does not hold already. Claiming it with
an update after its insert rewrote every ticket once more (about 3 ms of PostgreSQL each in a burst, every index
rewritten). So while enabled (the daemon, offline model), intake inserts a new ticket claimed by this process's
triage owner (running, attempt 1, a short lease: models.tickets.claimed_triage) and queues it here; the triage job
takes from this queue before it claims from the database, and writes each result on the same conditions as for a
claimed ticket (triage/batch.py). Nothing is lost when the daemon dies: the lease expires and any daemon's claim
takes the ticket over (triage/queue.due_filters), as for any worker that died; a clean stop hands them back at once.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import deque

from models import Ticket, utcnow
from models.claims import make_owner_id
from models.tickets import TRIAGE_LEASE, TriageState, claimed_triage

logger = logging.getLogger(__name__)

LEASE_SECONDS = 120  # a ticket left in the queue longer is dropped from it: the database claim takes it over
MAX_QUEUED = 5000  # beyond this many, new tickets are inserted unclaimed (memory stays bounded)

_lock = threading.Lock()
_queue: deque[Ticket] = deque()
_owner: str | None = None


def enable() -> str:
    """Hand this process's new tickets to its triage job from now on; the owner name their claims carry."""
    global _owner
    with _lock:
        if _owner is None:
            _owner = make_owner_id()
        return _owner


def owner() -> str | None:
    return _owner


def new_claim(now: dt.datetime | None = None) -> TriageState | None:
    """The triage state a new ticket is inserted with: claimed by this process, or None (pending, unclaimed) when
    handing over is off or the queue is full."""
    if _owner is None or len(_queue) >= MAX_QUEUED:
        return None
    return claimed_triage(_owner, now or utcnow(), LEASE_SECONDS)


def put(tickets: list[Ticket]) -> None:
    """Queue inserted tickets that carry this process's claim (the others are left to the database claim)."""
    mine = [t for t in tickets if _owner is not None and t.triage.claimed_by == _owner]
    with _lock:
        _queue.extend(mine)


def take(limit: int, now: dt.datetime | None = None) -> list[Ticket]:
    """Up to `limit` queued tickets, oldest first. Those whose lease has (nearly) run out are dropped: the
    database claim takes them over, so they must not also be triaged from here."""
    cutoff = (now or utcnow()) + dt.timedelta(seconds=5)
    taken: list[Ticket] = []
    dropped = 0
    with _lock:
        while _queue and len(taken) < limit:
            ticket = _queue.popleft()
            if ticket.triage.lease_until is not None and ticket.triage.lease_until <= cutoff:
                dropped += 1
            else:
                taken.append(ticket)
    if dropped:
        logger.warning("%s handed-over tickets waited past their lease; the triage claim takes them over", dropped)
    return taken


def queued() -> int:
    return len(_queue)


def release_all() -> int:
    """Stop handing over, and give every queued ticket back to the triage queue (pending, due now): on a clean
    stop, so that they need not wait for their lease to expire. The number given back."""
    global _owner
    with _lock:
        held, owner_name = list(_queue), _owner
        _queue.clear()
        _owner = None
    if not held or owner_name is None:
        return 0
    result = Ticket._get_collection().update_many(
        {"_id": {"$in": [t.id for t in held]}, TRIAGE_LEASE.owner: owner_name, "triage.state": "running"},
        {
            "$set": {"triage.state": "pending", "triage.attempts": 0, "triage.next_attempt_at": utcnow()},
            "$unset": {TRIAGE_LEASE.owner: "", TRIAGE_LEASE.until: ""},
        },
    )
    return result.modified_count
