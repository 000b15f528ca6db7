"""An extractive summary of the customer's own words: the sentences that carry the most of the email.

The body a provider sees is already the new text (mail-parser-reply drops quotes and signatures at ingest,
daemon/parse.py); `own_text` also cuts what slips through (quoted lines, reply headers, sign-offs,
greetings). Sentences are scored by the frequency of their content words in the email (a Luhn-style
summary), with a bonus for words of the subject and for facts like error codes, then the best ones are
given in their original order. Pure: no model, no database.
"""

from __future__ import annotations

import re
from collections import Counter

from triage.textprep import strip_quotes

MAX_SUMMARY_CHARS = 280
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[^\s])|\n{2,}|\n(?=[-*•]\s)")
_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)
_HAS_CODE = re.compile(r"\b(?:0x[0-9a-f]{4,}|[a-z]{0,5}[-#]?\d{3,})\b", re.IGNORECASE)
_GREETING = re.compile(
    r"^\s*(hi|hello|hey|dear|good (morning|afternoon|evening)|hallo|guten (tag|morgen|abend)|"
    r"sehr geehrte[rs]?|liebe[rs]?|moin|servus)\b[^.!?\n]{0,60}[,!:]?\s*$",
    re.IGNORECASE,
)
_SIGN_OFF = re.compile(
    r"^\s*(--\s*$|__+\s*$|(best|kind|warm)?\s*regards\b|best\b|thanks?( you)?( so much| in advance)?[,.!]?\s*$|"
    r"many thanks|cheers\b|sincerely\b|mit freundlichen grüßen|mfg\b|viele grüße|beste grüße|"
    r"freundliche grüße|danke( schön| im voraus)?[,.!]?\s*$|vielen dank[,.!]?\s*$|sent from my\b|"
    r"von meinem \w+ gesendet)",
    re.IGNORECASE,
)
_STOP = frozenset(
    "the and for you your are was were with this that have has had not but can could would should our out "
    "from they them their there here what when which who will just also been any all get got about into "
    "please thank thanks hello dear regards need help issue problem support team "
    "der die das und ist nicht ich mit sie wir ein eine einen einem bitte für auf dem den von zu es "
    "sich wie wird werden haben hat kann können auch noch aber oder wenn dass uns unser unsere ihr ihre "
    "hallo danke grüße team problem hilfe".split()
)


def own_text(body: str) -> str:
    """The customer's own lines: no quotes, reply headers, greeting line or anything from the sign-off on."""
    lines = strip_quotes(body or "").replace("\r\n", "\n").split("\n")
    kept: list[str] = []
    for line in lines:
        if _SIGN_OFF.match(line) and kept:
            break
        if not kept and (not line.strip() or _GREETING.match(line)):
            continue
        kept.append(line)
    return "\n".join(kept).strip()


def sentences(text: str) -> list[str]:
    return [" ".join(s.split()) for s in _SENTENCE_END.split(text) if s and len(s.split()) >= 2]


def _words(text: str) -> list[str]:
    return [w for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in _STOP]


def extractive_summary(subject: str, body: str, limit: int = MAX_SUMMARY_CHARS) -> str:
    """The best sentences of the customer's text within `limit` characters, in their order; the subject
    when the body has nothing to offer."""
    found = sentences(own_text(body))
    if not found:
        return " ".join(subject.split())[:limit]
    frequency = Counter(_words(" ".join(found)))
    subject_words = set(_words(subject))
    scored = []
    for index, sentence in enumerate(found):
        words = _words(sentence)
        if not words:
            continue
        score = sum(frequency[w] for w in set(words)) / len(words) ** 0.5
        score *= 1.0 + 0.5 * len(subject_words & set(words)) / max(len(subject_words), 1)
        score *= 1.3 if _HAS_CODE.search(sentence) else 1.0
        score *= 1.2 if index == 0 else 1.0  # customers tend to lead with the problem
        scored.append((score, index, sentence))
    if not scored:
        return " ".join(subject.split())[:limit]
    chosen: list[tuple[int, str]] = []
    used = 0
    for _, index, sentence in sorted(scored, key=lambda s: (-s[0], s[1])):
        if used + len(sentence) + 1 > limit:
            continue
        chosen.append((index, sentence))
        used += len(sentence) + 1
        if len(chosen) == 3:
            break
    if not chosen:  # even the best sentence is too long: cut it at a word boundary
        best = max(scored)[2]
        return best[: limit - 1].rsplit(" ", 1)[0] + "…"
    return " ".join(sentence for _, sentence in sorted(chosen))
