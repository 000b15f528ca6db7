"""A database lease so that one daemon instance at a time reads a mailbox (others stand by).

One MailboxLease document per mailbox; taking, renewing and releasing it are claims (models/claims.py):
one atomic conditional update each, so of two instances racing for an expired lease exactly one wins.
"""

from __future__ import annotations

import datetime as dt
import logging

from pymongo.errors import DuplicateKeyError, OperationFailure

from models import MailboxLease, utcnow
from models.claims import claim, finish, make_owner_id, renew

logger = logging.getLogger(__name__)


def make_holder_id() -> str:
    return make_owner_id()


class Lease:
    def __init__(self, name: str, holder: str, seconds: int) -> None:
        self.name, self.holder, self.seconds = name, holder, seconds
        self.held = False
        self.renewed_at: dt.datetime | None = None

    def acquire(self) -> bool:
        """Take or renew the lease; True while we hold it."""
        now = utcnow()
        if self.held and renew(MailboxLease, self.name, self.holder, self.seconds, now=now):
            self.renewed_at = now
            return True
        self._ensure_document()
        if claim(MailboxLease, {"_id": self.name}, self.holder, self.seconds, now=now) is None:
            return self._lost()
        if not self.held:
            logger.info("took the lease on %s", self.name)
        self.held, self.renewed_at = True, now
        return True

    def renew_if_due(self) -> bool:
        """Renew when a third of the lease has passed; False when it was lost."""
        if self.held and self.renewed_at and (utcnow() - self.renewed_at).total_seconds() < self.seconds / 3:
            return True
        return self.acquire()

    def release(self) -> None:
        if self.held:
            finish(MailboxLease, self.name, self.holder)
        self.held = False

    def _ensure_document(self) -> None:
        collection = MailboxLease._get_collection()
        if collection.count_documents({"_id": self.name}, limit=1):
            return
        try:
            collection.update_one({"_id": self.name}, {"$setOnInsert": {"claimed_by": None}}, upsert=True)
        except (DuplicateKeyError, OperationFailure):  # another instance created it first: as good
            pass

    def _lost(self) -> bool:
        if self.held:
            logger.warning("lost the lease on %s", self.name)
        self.held = False
        return False
