"""Backscatter limits for acknowledgements: an overall hourly cap, and no acknowledgement to a sender
our own receiving server saw fail DMARC or SPF (the ticket is marked for review instead).
"""

from __future__ import annotations

import logging
import re

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError, OperationFailure

from config import Settings
from daemon.parse import ParsedEmail
from models import Ticket, utcnow

logger = logging.getLogger(__name__)
COUNTERS = "counters"
_COMMENT = re.compile(r"\([^()]*\)")
_RESULT = re.compile(r"\b(dmarc|spf)\s*=\s*([a-z]+)", re.I)


def sender_auth_failure(parsed: ParsedEmail, authserv_id: str) -> str:
    """'' unless an Authentication-Results header added by `authserv_id` (our receiving server, which
    removes or overrides forged ones) says DMARC or SPF failed; then which one, e.g. 'dmarc=fail'."""
    if not authserv_id:
        return ""
    for value in parsed.auth_results:
        text = _COMMENT.sub(" ", value)
        server, _, results = text.partition(";")
        words = server.split()
        if not words or words[0].lower() != authserv_id.lower():
            continue
        for method, result in _RESULT.findall(results):
            if result.lower() == "fail":
                return f"{method.lower()}=fail"
    return ""


def flag_for_review(ticket: Ticket, reason: str) -> None:
    """Add a reason a person must review the ticket before anything automatic (idempotent)."""
    Ticket.objects(id=ticket.id).update_one(add_to_set__security_flags=reason[:200])
    if reason not in (ticket.security_flags or []):
        ticket.security_flags = [*(ticket.security_flags or []), reason[:200]]


def claim_overall_ack_slots(count: int, settings: Settings) -> int:
    """Count `count` acknowledgements against this clock hour's overall cap (one atomic `$inc` on a counter);
    how many of them fit under the cap (the first ones of the batch get the places)."""
    collection = Ticket._get_db()[COUNTERS]
    key = f"acks:{utcnow():%Y%m%d%H}"
    for _attempt in range(5):
        try:
            document = collection.find_one_and_update(
                {"_id": key}, {"$inc": {"value": count}}, upsert=True, return_document=ReturnDocument.AFTER
            )
            before = int(document["value"]) - count
            return max(0, min(count, settings.ack_limit_total_per_hour - before))
        except DuplicateKeyError:  # two first upserts of the hour raced: the document exists now
            continue
        except OperationFailure as error:  # racing upserts can surface as a PostgreSQL deadlock
            if "deadlock" not in str(error).lower():
                raise
    logger.warning("overall acknowledgement counter kept conflicting; not acknowledging")
    return 0
