"""Turning a ticket into the text a provider sees: NUL-free, quote-stripped, length-capped."""

from __future__ import annotations

import datetime as dt
import re

from bson import ObjectId

from models import Ticket, TicketMessage
from triage.provider import TriageInput

MAX_BODY_CHARS = 6000
MAX_SUBJECT_CHARS = 300
_QUOTE_LINE = re.compile(r"^\s*>.*$", re.MULTILINE)
_REPLY_HEADER = re.compile(
    r"^(On .{0,200} wrote:|Am .{0,200} schrieb .{0,200}:|-{2,}\s*Original Message\s*-{2,}|"
    r"-{2,}\s*Ursprüngliche Nachricht\s*-{2,}).*",
    re.MULTILINE | re.DOTALL | re.IGNORECASE,
)
_WORDS = re.compile(r"[a-zäöüß]+")
_GERMAN = frozenset("der die das und ist nicht ich mit sie wir ein eine bitte für auf dem den von zu es".split())
_ENGLISH = frozenset("the and is not i with you we a an please for on to of it my this that".split())


def strip_quotes(text: str) -> str:
    """Drop quoted lines and everything after a reply header (the new text is what matters)."""
    text = _REPLY_HEADER.sub("", text)
    return _QUOTE_LINE.sub("", text).strip()


def clean(text: str, limit: int) -> str:
    text = (text or "").replace("\x00", "").replace("\r\n", "\n")
    return text[:limit].strip()


def guess_language(text: str) -> str:
    """'de' or 'en' by stop-word counts ('' when there is nothing to go on)."""
    words = _WORDS.findall(text.lower())
    german, english = sum(w in _GERMAN for w in words), sum(w in _ENGLISH for w in words)
    if german == english == 0:
        return ""
    return "de" if german > english else "en"


def ticket_input(ticket: Ticket) -> TriageInput:
    """The subject, the first inbound message's new text and its attachments' names (inline images left out)."""
    return ticket_inputs([ticket])[0]


def ticket_inputs(tickets: list[Ticket]) -> list[TriageInput]:
    """`ticket_input` for many tickets with one read of their first messages (the (ticket, created_at) index)."""
    first: dict[ObjectId, dict] = {}
    rows = TicketMessage._get_collection().find(
        {"ticket": {"$in": [t.id for t in tickets]}, "kind": "inbound"},
        {"ticket": 1, "new_text": 1, "text": 1, "created_at": 1, "attachments.filename": 1, "attachments.inline": 1},
    )
    for row in sorted(rows, key=lambda r: r.get("created_at") or dt.datetime.max):
        first.setdefault(row["ticket"], row)
    items = []
    for ticket in tickets:
        message = first.get(ticket.id) or {}
        body = message.get("new_text") or strip_quotes(message.get("text") or "")
        files = message.get("attachments") or []
        attachments = tuple(clean(a.get("filename") or "", 200) for a in files if not a.get("inline"))
        items.append(
            TriageInput(
                subject=clean(ticket.subject, MAX_SUBJECT_CHARS),
                body=clean(body, MAX_BODY_CHARS),
                language_hint=ticket.language or "",
                attachments=attachments,
            )
        )
    return items
