"""Helpful notes for one ticket, computed when it is triaged: facts found in the email and the three most
similar earlier tickets with their outcome and first staff reply. Stored on the ticket; the web only shows them.

The hook for the triage job is `notes_for(ticket, item, model_dir)`; `notes_text(notes)` renders them as
the agent reads them and as the LLM's context (`TriageInput.context`).
"""

from __future__ import annotations

import dataclasses
import logging

from models import Ticket
from triage.facts import extract_facts, facts_lines
from triage.provider import TriageInput
from triage.similar import index_store, similar_tickets

logger = logging.getLogger(__name__)
SIMILAR_COUNT = 3
REPLY_IN_NOTES_CHARS = 200


def notes_for(ticket: Ticket, item: TriageInput, model_dir: str) -> dict:
    """{"facts": {kind: [values]}, "similar_tickets": [{number, similarity, subject, status, category, reply}]}.

    A failure to read the index or the similar tickets leaves them out (logged); triage goes on."""
    facts = extract_facts(item.subject, item.body, item.attachments)
    try:
        index = index_store(model_dir).load()
        similar = similar_tickets(index, item.subject, item.body, before=ticket.number, count=SIMILAR_COUNT)
    except Exception:  # noqa: BLE001 - notes are a help, never a reason to fail triage
        logger.exception("ticket #%s: similar tickets not found", ticket.number)
        similar = []
    return {"facts": facts, "similar_tickets": similar}


def notes_text(notes: dict) -> str:
    """The notes as lines: one per similar ticket (number, outcome, first staff reply), then the facts."""
    lines = []
    for similar in notes.get("similar_tickets") or []:
        outcome = ", ".join(v for v in (similar.get("status"), similar.get("category")) if v)
        line = f"Similar #{similar['number']} ({similar['similarity']:.0%}, {outcome}): {similar['subject']}"
        reply = similar.get("reply") or ""
        if reply:
            cut = reply if len(reply) <= REPLY_IN_NOTES_CHARS else reply[: REPLY_IN_NOTES_CHARS - 1] + "…"
            line += f" — staff replied: {cut}"
        lines.append(line)
    lines += facts_lines(notes.get("facts") or {})
    return "\n".join(lines)


def with_notes(item: TriageInput, notes: dict) -> TriageInput:
    """`item` carrying its rendered notes as context for the provider."""
    return dataclasses.replace(item, context=notes_text(notes))


def ticket_fields(notes: dict) -> dict:
    """The ticket fields the notes are stored in (merged into the triage result's update)."""
    return {"facts": notes.get("facts") or {}, "similar_tickets": notes.get("similar_tickets") or []}
