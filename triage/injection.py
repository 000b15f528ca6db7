"""Heuristics for email text that tries to instruct the triage model (English and German)."""

from __future__ import annotations

import re

_PATTERNS: tuple[tuple[str, str], ...] = (
    (
        "ignore instructions",
        r"\b(ignore|disregard|forget|override)\b.{0,40}\b(previous|prior|above|earlier|all|your)\b"
        r".{0,30}\b(instructions?|prompts?|rules?|directions?|context)\b",
    ),
    (
        "ignore instructions",
        r"\b(ignoriere|vergiss|missachte)\w*\b.{0,50}\b(anweisungen|instruktionen|regeln|vorgaben)\b",
    ),
    ("system prompt", r"\b(system\s*prompt|systemprompt|system\s*instruction|developer\s*message)\b"),
    ("role play", r"\b(you are now|act as|pretend to be|du bist jetzt|tu so als)\b"),
    (
        "assign to",
        r"\b(assign|route|forward|escalate)\s+(this|the|my)?\s*(ticket|issue|request|case)?\s*(directly\s+)?"
        r"to\b",
    ),
    ("assign to", r"\b(weise|leite)\b.{0,40}\b(zu|weiter)\b"),
    ("assign to", r"\bzuweisen\s+an\b|\bzuordnen\s+an\b"),
    (
        "set priority",
        r"\b(mark|set|flag|classify|label|treat)\b.{0,30}\b(as|to)\s+(urgent|critical|high|highest|"
        r"top)\b",
    ),
    ("set priority", r"\b(priority|priorität|prioritaet)\s*[:=]\s*\w+"),
    ("set priority", r"\b(markiere|setze|stufe|behandle)\w*\b.{0,40}\b(dringend|kritisch|hoch|höchste)\b"),
    ("set category", r"\b(category|kategorie|required_skills|skills?)\s*[:=]\s*\w+"),
    ("model tokens", r"<\s*/?\s*(email|system|instructions?)\s*>|\[/?inst\]|<\|im_start\|>"),
)
_COMPILED = tuple((label, re.compile(pattern, re.IGNORECASE | re.DOTALL)) for label, pattern in _PATTERNS)


def injection_signals(text: str) -> list[str]:
    """Labels of the instruction-like patterns found in `text` (empty when it looks like plain data)."""
    found: dict[str, None] = {}
    for label, pattern in _COMPILED:
        if pattern.search(text or ""):
            found.setdefault(label, None)
    return list(found)


def without_instructions(text: str) -> str:
    """`text` minus the sentences that try to instruct the model (for an unsteered priority estimate)."""
    sentences = re.split(r"(?<=[.!?\n])\s*", text or "")
    return " ".join(s for s in sentences if not any(p.search(s) for _, p in _COMPILED)).strip()
