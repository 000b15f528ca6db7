"""The scheduled jobs: triage (claim, classify, route, notify), SLA escalation, and retraining."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable

from config import Settings
from triage.batch import BatchOutcome, triage_batch
from triage.queue import claim_due, waiting_count, worker_id
from triage.service import build_provider, offline_for_backlog
from triage.taxonomy import load_taxonomy

logger = logging.getLogger(__name__)
PASS_SECONDS = 20.0  # a pass stops claiming after this long, so a shutdown never waits on a long burst


def triage_job(settings: Settings, keep_going: Callable[[], bool] | None = None) -> None:
    """One pass: claim due tickets a batch at a time until none are left (bounded in time), triage, route, notify.

    A batch is one atomic claim, one read of the texts, one classification (the offline model vectorises the
    batch once), one bulk write of the results, and one routing of the batch (triage/routing_batch.py).
    `keep_going`, asked after each batch: False ends the pass early (the daemon's intake has a backlog).
    """
    worker = worker_id()
    started = time.monotonic()
    waiting = waiting_count()
    tickets = claim_due(worker, limit=_batch_size(settings, waiting))
    if not tickets:  # the common idle pass: a count and two indexed claims that found nothing
        return
    taxonomy = load_taxonomy()
    provider = build_provider(settings)
    total = BatchOutcome()
    while tickets:
        done = triage_batch(tickets, worker, provider, taxonomy, settings, waiting)
        for name in ("written", "routed", "failed", "lost"):
            setattr(total, name, getattr(total, name) + getattr(done, name))
        if time.monotonic() - started >= PASS_SECONDS or (keep_going is not None and not keep_going()):
            break
        waiting = waiting_count()
        tickets = claim_due(worker, limit=_batch_size(settings, waiting))
    logger.info(
        "triage pass: %s triaged, %s routed, %s failed, %s lost claims in %.1f s",
        total.written,
        total.routed,
        total.failed,
        total.lost,
        time.monotonic() - started,
    )


def _batch_size(settings: Settings, waiting: int) -> int:
    """A full batch for the offline model; for Gemini, enough to keep GEMINI_CONCURRENCY requests busy twice over."""
    offline = settings.triage_provider == "local" or not settings.gemini_api_key
    if offline or offline_for_backlog(settings, waiting):
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
