"""Turning the offline model's scores into triage results: shared by the scikit-learn model used in training
and evaluation (triage/local.py) and the numpy-only one the daemon and the web load (triage/runtime.py)."""

from __future__ import annotations

import functools
import re

import numpy as np

from triage.facts import extract_facts, facts_lines
from triage.injection import injection_signals
from triage.provider import Taxonomy, TriageInput, TriageResult
from triage.summary import extractive_summary
from triage.textprep import guess_language

SKILL_THRESHOLD = -0.3  # ridge score; measured best for micro-F1 beside the top-k cut


class ResultBuilder:
    """Turns the models' scores into results; shared by the scikit-learn model and the lean one."""

    taxonomy: Taxonomy
    keywords: dict[str, list[str]]
    skills_per_ticket: int
    auto_route: dict | None

    @property
    def skill_classes(self) -> list[str]:
        raise NotImplementedError

    def _results(
        self,
        items: list[TriageInput],
        texts: list[str],
        category: tuple[list[str], np.ndarray],
        priority: tuple[list[str], np.ndarray],
        skill_scores: np.ndarray | None,
        neighbours: list,
    ) -> list[TriageResult]:
        results = []
        for row, item in enumerate(items):
            chosen_category, chosen_priority = category[0][row], priority[0][row]
            conf = {"category": float(category[1][row]), "priority": float(priority[1][row])}
            notes = []
            near = neighbours[row]
            if near is not None:
                similarity, (near_category, near_priority, reference) = near
                if near_category:
                    chosen_category, conf["category"] = near_category, max(similarity, 0.8)
                if near_priority:
                    chosen_priority, conf["priority"] = near_priority, max(similarity, 0.8)
                if reference:
                    notes.append(f"Very similar to ticket {reference} ({similarity:.0%} text overlap).")
            skills, skill_conf = self._skills(texts[row], None if skill_scores is None else skill_scores[row])
            conf["required_skills"] = skill_conf
            language = guess_language(f"{item.subject} {item.body}") or item.language_hint
            conf["language"] = 0.9 if language else 0.0
            result = TriageResult(
                category=chosen_category,
                priority=chosen_priority,
                required_skills=skills,
                language=language,
                summary=extractive_summary(item.subject, item.body),
                helpful_notes="\n".join([*notes, _notes_text(item)]).strip(),
                confidence=conf,
                injection_suspected=bool(injection_signals(f"{item.subject}\n{item.body}")),
                provider="local",
            )
            result = result.clipped_to(self.taxonomy)
            chosen = getattr(self, "auto_route", None)  # models saved before it have no such attribute
            if chosen is not None:  # chosen at the last retrain; a None threshold: no level was accurate enough
                threshold = chosen.get("threshold")
                result.auto_route = threshold is not None and result.confidence["category"] >= threshold
            results.append(result)
        return results

    def _skills(self, text: str, scores: np.ndarray | None) -> tuple[list[str], float]:
        """As many skills as labelled tickets typically carry; keyword matches fill one more place."""
        chosen: dict[str, float] = {}
        if scores is not None:
            classes = self.skill_classes
            order = np.argsort(scores)[::-1]
            for rank, index in enumerate(order[: self.skills_per_ticket]):
                if rank == 0 or scores[index] >= SKILL_THRESHOLD:
                    chosen[str(classes[index])] = float(min(max(scores[index] + 0.5, 0.0), 1.0))
        for skill, words in self.keywords.items():
            if len(chosen) > self.skills_per_ticket:
                break
            if skill not in chosen and any(_contains(text, w) for w in words):
                chosen[skill] = 0.6
        if not chosen:
            return [], 0.2
        return list(chosen), float(np.mean(list(chosen.values())))


def _contains(text: str, word: str) -> bool:
    """`word` in `text` as a whole word (a plain substring test first: most keywords are in no given ticket)."""
    return word in text and _whole_word(word).search(text) is not None


@functools.lru_cache(maxsize=4096)
def _whole_word(word: str) -> re.Pattern[str]:
    # compiled once per keyword: re's own cache (512 patterns) is shared with everything else in the process
    return re.compile(rf"(?<!\w){re.escape(word)}(?!\w)")


def _notes_text(item: TriageInput) -> str:
    """The notes computed before triage (similar tickets, facts: `TriageInput.context`), else the facts alone."""
    if item.context:
        return item.context
    return "\n".join(facts_lines(extract_facts(item.subject, item.body, item.attachments)))
