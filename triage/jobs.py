"""The scheduled jobs: triage (claim, classify, route, notify), SLA escalation, and retraining."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Protocol

from config import Settings
from models import Ticket
from triage.batch import BatchOutcome, triage_batch
from triage.queue import claim_due, waiting_count, worker_id
from triage.service import build_provider, offline_for_backlog
from triage.taxonomy import load_taxonomy

logger = logging.getLogger(__name__)
PASS_SECONDS = 20.0  # a pass stops claiming after this long, so a shutdown never waits on a long burst


class Handed(Protocol):
    """New tickets this process inserted already claimed for its triage (daemon/handoff.py)."""

    def owner(self) -> str | None: ...

    def take(self, limit: int) -> list[Ticket]: ...


def triage_job(settings: Settings, keep_going: Callable[[], bool] | None = None, handed: Handed | None = None) -> None:
    """One pass: triage due tickets a batch at a time until none are left (bounded in time), route, notify.

    A batch is the tickets `handed` over by intake (claimed when inserted), else one atomic claim; then one read of
    the texts, one classification (the offline model vectorises the batch once), one bulk write of the results,
    and one routing of the batch (triage/routing_batch.py).
    `keep_going`, asked after each batch: False ends the pass early (the daemon's intake has a backlog).
    """
    worker = worker_id()
    started = time.monotonic()
    waiting = waiting_count()
    tickets, owner = _next_batch(settings, worker, waiting, handed)
    if not tickets:  # the common idle pass: a count and two indexed claims that found nothing
        return
    taxonomy = load_taxonomy()
    provider = build_provider(settings)
    total = BatchOutcome()
    while tickets:
        done = triage_batch(tickets, owner, provider, taxonomy, settings, waiting)
        for name in ("written", "routed", "failed", "lost"):
            setattr(total, name, getattr(total, name) + getattr(done, name))
        if time.monotonic() - started >= PASS_SECONDS or (keep_going is not None and not keep_going()):
            break
        waiting = waiting_count()
        tickets, owner = _next_batch(settings, worker, waiting, handed)
    logger.info(
        "triage pass: %s triaged, %s routed, %s failed, %s lost claims in %.1f s",
        total.written,
        total.routed,
        total.failed,
        total.lost,
        time.monotonic() - started,
    )


def _next_batch(settings: Settings, worker: str, waiting: int, handed: Handed | None) -> tuple[list[Ticket], str]:
    """(tickets, the owner of their claims): those handed over first, else claimed from the database."""
    limit = _batch_size(settings, waiting)
    owner = handed.owner() if handed is not None else None
    if handed is not None and owner is not None:
        tickets = handed.take(limit)
        if tickets:
            return tickets, owner
    return claim_due(worker, limit=limit), worker


def _batch_size(settings: Settings, waiting: int) -> int:
    """A full batch for the offline model; for Gemini, enough to keep GEMINI_CONCURRENCY requests busy twice over."""
    if settings.offline_triage or offline_for_backlog(settings, waiting):
        return settings.triage_batch_size
    return max(1, min(settings.triage_batch_size, 2 * settings.gemini_concurrency))


def sla_job(settings: Settings, now: dt.datetime | None = None) -> None:
    """Escalate open tickets that passed their response deadline with no response."""
    from triage.sla import escalate_overdue

    escalate_overdue(settings, now)


def retrain_job(settings: Settings) -> None:
    """Retrain the offline model from taxonomy seeds and moderators' corrections; rebuild the similar-ticket index."""
    from triage.training import retrain

    retrain(settings)
