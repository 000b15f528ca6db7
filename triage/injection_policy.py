"""What the injection flag does to a triage result: the email's own instructions never raise its
priority above the non-LLM estimate, and skills named only in those instructions neither route nor
escalate it. The ticket goes to the review queue (apply_result) with the reason.
"""

from __future__ import annotations

import re

from triage.injection import instruction_sentences, normalise, without_instructions
from triage.provider import Taxonomy, TriageInput, TriageResult

_RANK = {"low": 0, "medium": 1, "high": 2, "urgent": 3}


def unsteered_input(item: TriageInput) -> TriageInput:
    """The email without its instruction-like sentences: what the non-LLM estimate reads."""
    return TriageInput(without_instructions(item.subject), without_instructions(item.body), item.language_hint)


def constrain_flagged(result: TriageResult, item: TriageInput, baseline: TriageResult | None) -> TriageResult:
    """Cap priority at the baseline's (the offline model on the text minus instructions; the taxonomy's
    default when there is none) and drop skills that only the instructions mention."""
    ceiling = baseline.priority if baseline is not None else "medium"
    if _RANK.get(result.priority, 1) > _RANK.get(ceiling, 1):
        result.priority = ceiling
        result.confidence["priority"] = 0.0
    instructions = normalise(" ".join(instruction_sentences(f"{item.subject}\n{item.body}"))).lower()
    rest = normalise(f"{without_instructions(item.subject)} {without_instructions(item.body)}").lower()
    supported = set(baseline.required_skills) if baseline is not None else set()
    kept = [s for s in result.required_skills if s in supported or not _only_in(s, instructions, rest)]
    if kept != result.required_skills:
        result.required_skills = kept
        result.confidence["required_skills"] = 0.0
    return result


def _only_in(skill: str, instructions: str, rest: str) -> bool:
    """The skill's name (or any word of it) appears in the instructions and nowhere else."""
    words = [w for w in re.split(r"[\s_/-]+", skill.lower()) if len(w) > 2] or [skill.lower()]

    def mentioned(text: str) -> bool:
        return any(re.search(rf"\b{re.escape(w)}", text) for w in words)

    return mentioned(instructions) and not mentioned(rest)


def clipped_baseline(baseline: TriageResult | None, taxonomy: Taxonomy) -> TriageResult | None:
    return baseline.clipped_to(taxonomy) if baseline is not None else None
