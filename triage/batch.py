"""Triage of a claimed batch: read its texts at once, classify at once, write the results with one bulk write.

Each ticket's notes (facts and similar earlier tickets, triage/notes.py) are stored with its result and given
to the provider as context.

A result is written only while this worker still holds the ticket's claim (the same conditional update as
triage.queue.complete, as one `bulk_write` of UpdateOne); the tickets written are then routed together
(triage/routing_batch.py). A failure is recorded on its ticket, and the ones beside it carry on.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from bson import ObjectId
from pymongo import UpdateOne
from pymongo.errors import BulkWriteError, OperationFailure

from config import Settings
from models import Ticket, utcnow
from models.tickets import TRIAGE_LEASE
from triage import routing_batch
from triage.injection import injection_signals
from triage.injection_policy import unsteered_input
from triage.notes import notes_for, with_notes
from triage.provider import ProviderUnavailable, Taxonomy, TriageInput, TriageResult
from triage.queue import ownership, release_with_failure
from triage.routing import escalate_ticket
from triage.service import AnyProvider, LocalProvider, classify_batch, guard_result, result_changes
from triage.textprep import ticket_inputs

logger = logging.getLogger(__name__)


@dataclass
class BatchOutcome:
    written: int = 0  # results stored
    routed: int = 0  # of those, assigned or escalated now
    failed: int = 0  # attempts recorded as failed (retried later, or escalated)
    lost: int = 0  # claims taken over meanwhile: results discarded


def _baselines(
    items: list[TriageInput], outcomes: list, taxonomy: Taxonomy, settings: Settings
) -> dict[int, TriageResult]:
    """The offline estimate of each flagged email's text without its instructions (the injection policy's cap)."""
    flagged = [
        i
        for i, (item, outcome) in enumerate(zip(items, outcomes, strict=True))
        if isinstance(outcome, TriageResult) and _flagged(outcome, item)
    ]
    if not flagged:
        return {}
    found = LocalProvider(settings).triage_many([unsteered_input(items[i]) for i in flagged], taxonomy)
    return dict(zip(flagged, found, strict=True))


def triage_batch(
    tickets: list[Ticket],
    worker: str,
    provider: AnyProvider,
    taxonomy: Taxonomy,
    settings: Settings,
    waiting: int = 0,
) -> BatchOutcome:
    """Triage, write and route `tickets` (claimed by `worker`); `waiting` is the queue's length (the Gemini cut-off)."""
    outcome = BatchOutcome()
    items = ticket_inputs(tickets)
    notes = [_notes(ticket, item, settings) for ticket, item in zip(tickets, items, strict=True)]
    with_context = [with_notes(item, n) if n else item for item, n in zip(items, notes, strict=True)]
    results = classify_batch(provider, with_context, taxonomy, settings, waiting)
    try:
        baselines = _baselines(items, results, taxonomy, settings)
    except Exception as problem:  # noqa: BLE001 - without the cap a flagged result must not be stored
        logger.exception("offline baseline of flagged emails failed")
        pairs = zip(results, items, strict=True)
        results = [problem if isinstance(r, TriageResult) and _flagged(r, i) else r for r, i in pairs]
        baselines = {}
    now = utcnow()
    staged: list[tuple[Ticket, dict]] = []
    failures: list[tuple[Ticket, Exception]] = []
    for index, (ticket, item, result) in enumerate(zip(tickets, items, results, strict=True)):
        if isinstance(result, Exception):
            failures.append((ticket, result))
            continue
        try:
            guarded, signals = guard_result(result, item, taxonomy, baselines.get(index))
            staged.append((ticket, result_changes(ticket, guarded, signals, settings, now, notes[index])))
        except Exception as error:  # noqa: BLE001 - recorded on the ticket
            logger.exception("ticket #%s: triage failed", ticket.number)
            failures.append((ticket, error))
    for ticket, changes in staged:
        _apply_in_memory(ticket, changes)
    try:
        planned = routing_batch.plan([t for t, _ in staged if t.assignee is None], now)
    except Exception:  # noqa: BLE001 - stored unrouted: the SLA job escalates it when its deadline passes
        logger.exception("routing a batch of %s triaged tickets failed", len(staged))
        planned = []
    decisions = {t.id: d for t, d in planned}
    written, routed, errors = _write(staged, decisions, worker, now)
    failures += errors
    outcome.written, outcome.lost = len(written), len(staged) - len(written) - len(errors)
    if outcome.lost:
        logger.warning("%s tickets lost their triage claim; their results were discarded", outcome.lost)
    mine = [(t, d) for t, d in planned if t.id in routed]
    for ticket, decision in mine:
        routing_batch.apply_in_memory(ticket, decision, now)
    try:
        routing_batch.record(mine, "system:triage", settings, now)
        outcome.routed = len(mine)
    except Exception:  # noqa: BLE001 - assigned; the audit entry or notification is what is missing
        logger.exception("recording %s assignments failed", len(mine))
    for ticket, failure in failures:
        outcome.failed += 1
        _record_failure(ticket, worker, failure, settings)
    return outcome


def _notes(ticket: Ticket, item: TriageInput, settings: Settings) -> dict | None:
    """Facts and similar earlier tickets (triage/notes.py); None when they cannot be had: triage goes on."""
    try:
        return notes_for(ticket, item, settings.model_dir)
    except Exception:  # noqa: BLE001 - notes are a help, never a reason to fail triage
        logger.exception("ticket #%s: helpful notes not computed", ticket.number)
        return None


def _apply_in_memory(ticket: Ticket, changes: dict) -> None:
    for name, value in changes.items():
        if name.startswith("triage."):
            setattr(ticket.triage, name.removeprefix("triage."), value)
        else:
            setattr(ticket, name, value)


def _write(
    staged: list[tuple[Ticket, dict]], decisions: dict, worker: str, now: dt.datetime
) -> tuple[set[ObjectId], set[ObjectId], list[tuple[Ticket, Exception]]]:
    """One bulk write of results (with their assignment), each conditional on the claim (and on the ticket still
    having no assignee when it assigns one). Returns the tickets written, those of them assigned, and failures."""
    if not staged:
        return set(), set(), []
    release = {TRIAGE_LEASE.owner: "", TRIAGE_LEASE.until: ""}
    operations = []
    for ticket, changes in staged:
        claim = {"_id": ticket.id, TRIAGE_LEASE.owner: worker, **ownership(ticket)}
        fields = dict(changes)
        if ticket.id in decisions:
            claim["assignee"] = None
            fields.update(routing_batch.assignment(decisions[ticket.id], now))
        operations.append(UpdateOne(claim, {"$set": fields, "$unset": release}))
    collection = Ticket._get_collection()
    errors: list[tuple[Ticket, Exception]] = []
    try:
        matched = collection.bulk_write(operations, ordered=False).matched_count
    except BulkWriteError as bulk_error:  # the other updates were applied; these are recorded as failures
        matched = bulk_error.details.get("nMatched", 0)
        for write_error in bulk_error.details.get("writeErrors", []):
            message = str(write_error.get("errmsg", ""))[:300]
            errors.append((staged[write_error["index"]][0], OperationFailure(message)))
    failed = {ticket.id for ticket, _ in errors}
    ids = [t.id for t, _ in staged if t.id not in failed]
    if matched == len(ids):
        return set(ids), {i for i in ids if i in decisions}, errors
    written, routed, retry = set(), set(), []
    rows = collection.find({"_id": {"$in": ids}}, {"triage.completed_at": 1, "triage.claimed_by": 1})
    for row in rows:  # what happened to each: written, still claimed (assigned by someone meanwhile), or lost
        triage = row.get("triage") or {}
        if triage.get("completed_at") == now and not triage.get("claimed_by"):
            written.add(row["_id"])
            if row["_id"] in decisions:
                routed.add(row["_id"])
        elif triage.get("claimed_by") == worker:
            retry.append(row["_id"])
    if retry:  # the result without the assignment someone else made meanwhile
        again = [(t, c) for t, c in staged if t.id in retry]
        more, _, more_errors = _write(again, {}, worker, now)
        written |= more
        errors += more_errors
    return written, routed, errors


def _flagged(result: TriageResult, item: TriageInput) -> bool:
    return result.injection_suspected or bool(injection_signals(f"{item.subject}\n{item.body}"))


def _record_failure(ticket: Ticket, worker: str, error: Exception, settings: Settings) -> None:
    retry_after = error.retry_after if isinstance(error, ProviderUnavailable) else 0.0
    if isinstance(error, ProviderUnavailable):
        message = f"provider unavailable: {error}"
    else:
        message = f"{type(error).__name__}: {error}"
    try:
        if release_with_failure(ticket, worker, message, settings.triage_max_attempts, retry_after):
            reason = f"triage failed after {ticket.triage.attempts} attempts: {message}"
            escalate_ticket(ticket, reason[:400], "system:triage", settings)
    except Exception:  # noqa: BLE001 - the lease expiry brings the ticket back
        logger.exception("ticket #%s: could not record the triage failure", ticket.number)
