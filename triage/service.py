"""Choosing a provider and applying a result to a ticket under the untrusted-text rules."""

from __future__ import annotations

import logging
import threading
import time

from config import Settings
from models import Ticket, utcnow
from models.tickets import sla_due
from triage.injection import injection_signals
from triage.injection_policy import clipped_baseline, constrain_flagged
from triage.local import ModelStore
from triage.provider import ProviderError, ProviderUnavailable, Taxonomy, TriageInput, TriageResult

logger = logging.getLogger(__name__)
_STORES: dict[str, ModelStore] = {}  # one loaded model per directory, shared by providers


class LocalProvider:
    name = "local"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = _STORES.setdefault(settings.model_dir, ModelStore(settings.model_dir))
        self._lock = threading.Lock()

    def triage(self, item: TriageInput, taxonomy: Taxonomy) -> TriageResult:
        model = self.store.load()
        if model is None or model.taxonomy != taxonomy:
            with self._lock:  # one thread (re)trains; the others wait and reuse it
                model = self.store.load()
                if model is None or model.taxonomy != taxonomy:
                    from triage.training import train_from_database

                    model = train_from_database(self.settings, taxonomy)
        return model.predict([item])[0]


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


def build_provider(settings: Settings):
    """The provider TRIAGE_PROVIDER asks for (`auto` without a key is the offline model)."""
    local = LocalProvider(settings)
    if settings.triage_provider == "local" or not settings.gemini_api_key:
        return local
    from triage.gemini import GeminiProvider

    gemini = GeminiProvider(settings)
    return gemini if settings.triage_provider == "gemini" else AutoProvider(gemini, local)


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


def apply_result(ticket: Ticket, result: TriageResult, signals: list[str], worker: str, settings: Settings) -> bool:
    """Write the result (sparing fields a human set); False if the claim was lost meanwhile."""
    from triage.queue import complete

    human = set(ticket.triage.human_fields or [])
    low = sorted(
        f
        for f in ("category", "priority")
        if f not in human and result.confidence.get(f, 0.0) < settings.triage_review_threshold
    )
    reasons = list(ticket.security_flags or [])
    if result.injection_suspected:
        reasons.append(
            "email looks like it tries to instruct the model" + (f" ({', '.join(signals)})" if signals else "")
        )
    if low:
        reasons.append("low confidence: " + ", ".join(low))
    now = utcnow()
    changes: dict[str, object] = {
        "language": result.language or ticket.language,
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
    if changes["language"] is None:  # a null language breaks the text index's language override on DocumentDB
        del changes["language"]
    if "category" not in human:
        changes["category"] = result.category or None
    if "priority" not in human:
        changes["priority"] = result.priority
        changes["sla_due_at"] = sla_due(ticket.created_at or now, result.priority, settings.sla_hours)
    if "required_skills" not in human:
        changes["required_skills"] = result.required_skills
    if not complete(ticket, worker, changes):  # conditional on still holding the claim
        logger.warning("ticket #%s: lost its triage claim; result discarded", ticket.number)
        return False
    ticket.reload()
    return True
