"""Choosing a provider and applying a result to a ticket under the untrusted-text rules."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Union

from config import Settings
from models import Ticket, utcnow
from models.tickets import sla_due
from triage.injection import injection_signals
from triage.injection_policy import clipped_baseline, constrain_flagged
from triage.notes import ticket_fields
from triage.provider import ProviderError, ProviderUnavailable, Taxonomy, TriageInput, TriageResult

if TYPE_CHECKING:
    from triage.gemini import GeminiProvider
    from triage.runtime import ModelStore, Predictor

logger = logging.getLogger(__name__)
_STORES: dict[str, ModelStore] = {}  # one loaded model per directory, shared by providers
_STORES_LOCK = threading.Lock()


def model_store(model_dir: str) -> ModelStore:
    """The shared store of `model_dir`; its plain-data model predicts without scikit-learn (triage/runtime.py)."""
    with _STORES_LOCK:
        if model_dir not in _STORES:
            from triage.runtime import ModelStore

            _STORES[model_dir] = ModelStore(model_dir)
        return _STORES[model_dir]


def warm_up(settings: Settings) -> None:
    """Load the saved offline model (the daemon does this in a background thread)."""
    started = time.perf_counter()
    try:
        loaded = model_store(settings.model_dir).load() is not None
    except Exception:  # noqa: BLE001 - the first triage loads (or trains) it again and records any failure
        logger.exception("loading the offline model failed")
        return
    logger.info("offline model %s in %.2f s", "loaded" if loaded else "absent", time.perf_counter() - started)


class LocalProvider:
    name = "local"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = model_store(settings.model_dir)
        self._lock = threading.Lock()

    def model(self, taxonomy: Taxonomy) -> Predictor:
        """The saved model for `taxonomy`, trained first when there is none or the lists changed."""
        model = self.store.load()
        if model is None or model.taxonomy != taxonomy:
            with self._lock:  # one thread (re)trains; the others wait and reuse it
                model = self.store.load()
                if model is None or model.taxonomy != taxonomy:
                    from triage.training import train_from_database

                    model = train_from_database(self.settings, taxonomy)
        return model

    def triage(self, item: TriageInput, taxonomy: Taxonomy) -> TriageResult:
        return self.triage_many([item], taxonomy)[0]

    def triage_many(self, items: list[TriageInput], taxonomy: Taxonomy) -> list[TriageResult]:
        """A whole batch at once: the text is vectorised once for all items."""
        return self.model(taxonomy).predict(items) if items else []


class AutoProvider:
    """Gemini first; the offline model while Gemini is out of quota, down, or answers badly."""

    name = "auto"

    def __init__(self, primary, fallback: LocalProvider) -> None:
        self.primary, self.fallback = primary, fallback
        self._paused_until = 0.0

    def triage(self, item: TriageInput, taxonomy: Taxonomy) -> TriageResult:
        if time.monotonic() >= self._paused_until:
            try:
                return self.primary.triage(item, taxonomy)
            except ProviderUnavailable as error:
                self._paused_until = time.monotonic() + max(error.retry_after, 30.0)
                logger.warning("gemini unavailable (%s); using the offline model", error)
            except ProviderError as error:
                logger.warning("gemini answer unusable (%s); using the offline model", error)
        return self.fallback.triage(item, taxonomy)


AnyProvider = Union[LocalProvider, AutoProvider, "GeminiProvider"]


def build_provider(settings: Settings) -> AnyProvider:
    """The provider TRIAGE_PROVIDER asks for (`auto` without a key is the offline model)."""
    local = LocalProvider(settings)
    if settings.offline_triage:
        return local
    from triage.gemini import GeminiProvider

    gemini = GeminiProvider(settings)
    return gemini if settings.triage_provider == "gemini" else AutoProvider(gemini, local)


def offline_for_backlog(settings: Settings, waiting: int) -> bool:
    """More tickets wait than TRIAGE_OFFLINE_BACKLOG: the offline model takes them so the queue drains."""
    return 0 < settings.triage_offline_backlog < waiting


def classify_batch(
    provider: AnyProvider,
    items: list[TriageInput],
    taxonomy: Taxonomy,
    settings: Settings,
    waiting: int = 0,
) -> list[TriageResult | Exception]:
    """A result, or the exception that stopped it, for each item.

    The offline model takes the whole batch at once (vectorised once) when it is the provider, or when
    `waiting` exceeds TRIAGE_OFFLINE_BACKLOG; otherwise one Gemini request per item, at most
    GEMINI_CONCURRENCY in flight and GEMINI_REQUESTS_PER_MINUTE (the provider's semaphore and rate limiter).
    """
    if not items:
        return []
    local = provider if isinstance(provider, LocalProvider) else LocalProvider(settings)
    if isinstance(provider, LocalProvider) or offline_for_backlog(settings, waiting):
        try:
            return list(local.triage_many(items, taxonomy))
        except Exception as error:  # noqa: BLE001 - recorded on each ticket of the batch
            logger.exception("offline triage of a batch of %s failed", len(items))
            return [error] * len(items)

    def one(item: TriageInput) -> TriageResult | Exception:
        try:
            return provider.triage(item, taxonomy)
        except Exception as error:  # noqa: BLE001 - recorded on the ticket
            return error

    with ThreadPoolExecutor(max_workers=max(1, settings.gemini_concurrency), thread_name_prefix="gemini") as pool:
        return list(pool.map(one, items))


def guard_result(
    result: TriageResult, item: TriageInput, taxonomy: Taxonomy, baseline: TriageResult | None
) -> tuple[TriageResult, list[str]]:
    """Clip to the closed lists; when the email tries to instruct the model, the injection policy applies
    (priority capped at the unsteered `baseline`, skills named only in the instructions dropped)."""
    result = result.clipped_to(taxonomy)
    signals = injection_signals(f"{item.subject}\n{item.body}")
    if signals or result.injection_suspected:
        result.injection_suspected = True
        result = constrain_flagged(result, item, clipped_baseline(baseline, taxonomy))
    return result, signals


def result_changes(
    ticket: Ticket,
    result: TriageResult,
    signals: list[str],
    settings: Settings,
    now: dt.datetime,
    notes: dict | None = None,
) -> dict[str, object]:
    """The fields a result sets on `ticket` (sparing fields a human set), with the state: review or done, and
    the notes (triage/notes.py) when given."""
    human = set(ticket.triage.human_fields or [])
    if result.auto_route is None:  # no data-chosen threshold: the configured one, on category and priority
        low = sorted(
            f
            for f in ("category", "priority")
            if f not in human and result.confidence.get(f, 0.0) < settings.triage_review_threshold
        )
    else:  # the offline model's threshold, chosen at retrain for >= 90% held-out category accuracy
        low = [] if result.auto_route or "category" in human else ["category"]
    # a mailbox's default category (models/mailboxes.py) stands where triage is not confident of one
    fallback = (ticket.mailbox_category or "") if "category" in low else ""
    if fallback:
        low = [f for f in low if f != "category"]
    reasons = list(ticket.security_flags or [])
    if result.injection_suspected:
        reasons.append(
            "email looks like it tries to instruct the model" + (f" ({', '.join(signals)})" if signals else "")
        )
    if low:
        reasons.append("low confidence: " + ", ".join(low))
    changes: dict[str, object] = {
        "summary": result.summary[:1000],
        "helpful_notes": result.helpful_notes[:4000],
        "updated_at": now,
        "triage.state": "review" if reasons else "done",
        "triage.provider": result.provider,
        "triage.confidence": {k: round(float(v), 3) for k, v in result.confidence.items()},
        "triage.injection_suspected": result.injection_suspected,
        "triage.injection_signals": signals,
        "triage.review_reason": "; ".join(reasons) or None,
        "triage.tokens_used": (ticket.triage.tokens_used or 0) + result.tokens_used,
        "triage.completed_at": now,
        "triage.last_error": None,
    }
    if result.language or ticket.language:  # never null: the text index reads `language` as its language override
        changes["language"] = result.language or ticket.language
    if notes is not None:
        changes.update(ticket_fields(notes))
    if "category" not in human:
        changes["category"] = fallback or result.category or None
    if "priority" not in human:
        changes["priority"] = result.priority
        changes["sla_due_at"] = sla_due(ticket.created_at or now, result.priority, settings.sla_hours)
    if "required_skills" not in human:  # the mailbox's default skills always stay
        changes["required_skills"] = list(dict.fromkeys([*result.required_skills, *(ticket.mailbox_skills or [])]))
    return changes


def apply_result(
    ticket: Ticket,
    result: TriageResult,
    signals: list[str],
    worker: str,
    settings: Settings,
    notes: dict | None = None,
) -> bool:
    """Write the result (sparing fields a human set) and the notes; False if the claim was lost meanwhile."""
    from triage.queue import complete

    if not complete(ticket, worker, result_changes(ticket, result, signals, settings, utcnow(), notes)):
        logger.warning("ticket #%s: lost its triage claim; result discarded", ticket.number)
        return False
    ticket.reload()
    return True
