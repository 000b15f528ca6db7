"""The provider interface: a ticket's text in, a validated triage result out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

FIELDS = ("category", "priority", "required_skills", "language", "summary")


@dataclass(frozen=True)
class Taxonomy:
    """The closed lists a provider must choose from (active records from the database)."""

    categories: tuple[str, ...]
    skills: tuple[str, ...]
    priorities: tuple[str, ...]
    default_category: str = "general"
    default_priority: str = "medium"


@dataclass(frozen=True)
class TriageInput:
    """What a provider sees: the email's subject and its new text (quotes already stripped)."""

    subject: str
    body: str
    language_hint: str = ""
    attachments: tuple[str, ...] = ()  # file names of the first message's attachments
    context: str = ""  # helpful notes computed before triage (similar earlier tickets, facts): data, not the email


@dataclass
class TriageResult:
    category: str
    priority: str
    required_skills: list[str]
    language: str
    summary: str
    helpful_notes: str
    confidence: dict[str, float] = field(default_factory=dict)
    injection_suspected: bool = False
    provider: str = ""
    tokens_used: int = 0
    auto_route: bool | None = None  # the offline model's data-chosen verdict; None: the configured threshold applies

    def clipped_to(self, taxonomy: Taxonomy) -> TriageResult:
        """Force every closed-list field into `taxonomy`; out-of-list values fall back with confidence 0."""
        confidence = dict(self.confidence)
        category, priority = self.category, self.priority
        if category not in taxonomy.categories:
            category = taxonomy.default_category if taxonomy.default_category in taxonomy.categories else ""
            confidence["category"] = 0.0
        if priority not in taxonomy.priorities:
            priority = taxonomy.default_priority
            confidence["priority"] = 0.0
        skills = [s for s in dict.fromkeys(self.required_skills) if s in taxonomy.skills]
        if len(skills) != len(self.required_skills):
            confidence["required_skills"] = min(confidence.get("required_skills", 0.0), 0.5)
        return TriageResult(
            category=category,
            priority=priority,
            required_skills=skills,
            language=(self.language or "")[:16],
            summary=self.summary,
            helpful_notes=self.helpful_notes,
            confidence=confidence,
            injection_suspected=self.injection_suspected,
            provider=self.provider,
            tokens_used=self.tokens_used,
            auto_route=self.auto_route,
        )


class ProviderError(Exception):
    """Triage failed for this ticket; the queue retries it later."""


class ProviderUnavailable(ProviderError):
    """The provider is out of quota or down; `retry_after` seconds is the server's hint (0 if none)."""

    def __init__(self, message: str, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TriageProvider(Protocol):
    name: str

    def triage(self, item: TriageInput, taxonomy: Taxonomy) -> TriageResult:
        """Classify one ticket; raise ProviderError (or ProviderUnavailable) on failure."""
        ...
