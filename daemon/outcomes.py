"""What happened to one inbound message: the small vocabulary the poller, CLI and tests share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Created:
    ticket_number: int
    acknowledged: bool = False
    ack_id: str | None = field(default=None, compare=False)  # the queued acknowledgement (outbox id)
    ack: Any = field(default=None, compare=False, repr=False)  # that OutboundEmail, stored claimed by us

    def describe(self) -> str:
        return f"created #{self.ticket_number}" + (" (acknowledged)" if self.acknowledged else "")


@dataclass(frozen=True)
class Threaded:
    ticket_number: int
    reopened: bool = False
    note: bool = False  # a bounce recorded as an internal note

    def describe(self) -> str:
        what = "bounce noted on" if self.note else "threaded into"
        return f"{what} #{self.ticket_number}" + (" (reopened)" if self.reopened else "")


@dataclass(frozen=True)
class Ignored:
    reason: str
    ticket_number: int | None = None

    def describe(self) -> str:
        return f"ignored: {self.reason}" + (f" (#{self.ticket_number})" if self.ticket_number else "")


@dataclass(frozen=True)
class Duplicate:
    """Already processed (same Message-ID): nothing was written."""

    ticket_number: int | None = None

    def describe(self) -> str:
        return "duplicate" + (f" of #{self.ticket_number}" if self.ticket_number else "")


@dataclass(frozen=True)
class Quarantined:
    reason: str
    quarantine_id: str = ""

    def describe(self) -> str:
        return f"quarantined: {self.reason}"


Outcome = Created | Threaded | Ignored | Duplicate | Quarantined
