"""The scheduled jobs: triage (claim, classify, route, notify), SLA escalation, and retraining."""

from __future__ import annotations

import datetime as dt
import logging
from concurrent.futures import ThreadPoolExecutor

from config import Settings
from models import Ticket
from triage.injection import injection_signals
from triage.injection_policy import unsteered_input
from triage.notes import notes_for, with_notes
from triage.provider import ProviderUnavailable, Taxonomy
from triage.queue import claim_due, release_with_failure, worker_id
from triage.routing import escalate_ticket, route_ticket
from triage.service import LocalProvider, apply_result, build_provider, guard_result
from triage.taxonomy import load_taxonomy
from triage.textprep import ticket_input

logger = logging.getLogger(__name__)
BATCH_SIZE = 20
MAX_TICKETS_PER_PASS = 500


def triage_job(settings: Settings) -> None:
    """One pass: claim due tickets in batches until none are left (bounded), triage, route, notify."""
    worker = worker_id()
    threads = max(1, settings.gemini_concurrency)  # database round trips overlap even for the offline model
    tickets = claim_due(worker, limit=max(BATCH_SIZE, threads))
    if not tickets:  # the common idle pass: two indexed claims that found nothing
        return
    taxonomy = load_taxonomy()
    provider = build_provider(settings)
    done = 0
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="triage") as pool:
        while tickets:
            list(pool.map(lambda t: process_ticket(t, worker, provider, taxonomy, settings), tickets))
            done += len(tickets)
            if done >= MAX_TICKETS_PER_PASS:
                break
            tickets = claim_due(worker, limit=max(BATCH_SIZE, threads))
    logger.info("triage pass handled %s tickets", done)


def process_ticket(ticket: Ticket, worker: str, provider, taxonomy: Taxonomy, settings: Settings) -> None:
    """Triage and route one claimed ticket; a failure is recorded on the ticket, never raised."""
    retry_after = 0.0
    try:
        item = ticket_input(ticket)
        notes = notes_for(ticket, item, settings.model_dir)  # similar earlier tickets and facts: stored, and context
        result = provider.triage(with_notes(item, notes), taxonomy)
        baseline = None
        if result.injection_suspected or injection_signals(f"{item.subject}\n{item.body}"):
            baseline = LocalProvider(settings).triage(unsteered_input(item), taxonomy)  # the non-LLM estimate
        result, signals = guard_result(result, item, taxonomy, baseline)
        if apply_result(ticket, result, signals, worker, settings, notes) and ticket.assignee is None:
            route_ticket(ticket, "system:triage", settings)
        return
    except ProviderUnavailable as error:
        retry_after, message = error.retry_after, f"provider unavailable: {error}"
    except Exception as error:  # noqa: BLE001 - contained per ticket, recorded on the ticket
        logger.exception("ticket #%s: triage failed", ticket.number)
        message = f"{type(error).__name__}: {error}"
    try:
        if release_with_failure(ticket, worker, message, settings.triage_max_attempts, retry_after):
            reason = f"triage failed after {ticket.triage.attempts} attempts: {message}"
            escalate_ticket(ticket, reason[:400], "system:triage", settings)
    except Exception:  # noqa: BLE001 - the lease expiry brings the ticket back
        logger.exception("ticket #%s: could not record the triage failure", ticket.number)


def sla_job(settings: Settings, now: dt.datetime | None = None) -> None:
    """Escalate open tickets that passed their response deadline with no response."""
    from triage.sla import escalate_overdue

    escalate_overdue(settings, now)


def retrain_job(settings: Settings) -> None:
    """Retrain the offline model from taxonomy seeds and moderators' corrections; rebuild the similar-ticket index."""
    from triage.training import retrain

    retrain(settings)
