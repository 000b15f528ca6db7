"""A database lease so that one daemon instance at a time reads a mailbox (others stand by).

FerretDB's conditional updates are not atomic, so taking a lease means inserting the next
generation's document with a unique `_id` (f"{name}:{generation}"): only one inserter wins.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import uuid

from pymongo.errors import DuplicateKeyError

from models import MailboxLease, utcnow

logger = logging.getLogger(__name__)


def make_holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    def __init__(self, name: str, holder: str, seconds: int) -> None:
        self.name, self.holder, self.seconds = name, holder, seconds
        self.generation: int | None = None
        self.renewed_at: dt.datetime | None = None

    def _latest(self) -> dict | None:
        collection = MailboxLease._get_collection()
        return next(iter(collection.find({"name": self.name}).sort("generation", -1).limit(1)), None)

    def acquire(self) -> bool:
        """Take or renew the lease; True while we hold it."""
        collection = MailboxLease._get_collection()
        now = utcnow()
        latest = self._latest()
        expires = now + dt.timedelta(seconds=self.seconds)
        if latest is not None and latest["holder"] == self.holder:
            collection.update_one({"_id": latest["_id"]}, {"$set": {"expires_at": expires}})
            # someone may have taken over an expired generation meanwhile: the newer generation wins
            if collection.find_one({"_id": f"{self.name}:{latest['generation'] + 1}"}):
                return self._lost()
            self.generation, self.renewed_at = latest["generation"], now
            return True
        if latest is not None and latest["expires_at"] > now:
            return self._lost()
        generation = (latest["generation"] + 1) if latest else 1
        try:
            collection.insert_one(
                {
                    "_id": f"{self.name}:{generation}",
                    "name": self.name,
                    "generation": generation,
                    "holder": self.holder,
                    "expires_at": expires,
                }
            )
        except DuplicateKeyError:
            return self._lost()
        collection.delete_many({"name": self.name, "generation": {"$lt": generation - 5}})
        logger.info("took the lease on %s (generation %s)", self.name, generation)
        self.generation, self.renewed_at = generation, now
        return True

    def renew_if_due(self) -> bool:
        """Renew when a third of the lease has passed; False when it was lost."""
        if self.renewed_at and (utcnow() - self.renewed_at).total_seconds() < self.seconds / 3:
            return True
        return self.acquire()

    def release(self) -> None:
        if self.generation is None:
            return
        MailboxLease._get_collection().update_one(
            {"_id": f"{self.name}:{self.generation}", "holder": self.holder}, {"$set": {"expires_at": utcnow()}}
        )
        self.generation = None

    def _lost(self) -> bool:
        if self.generation is not None:
            logger.warning("lost the lease on %s", self.name)
        self.generation = None
        return False
