"""The most similar earlier tickets, from a nearest-neighbour index saved beside the offline model.

The index holds only ticket numbers and hashed TF-IDF vectors of resolved and closed tickets (subject and
the customer's first message); it is built at each retrain (`build_similar_index`) and memory-mapped by
readers, so no process holds a copy of the tickets. A query multiplies one sparse vector by the index's
inverted lists (terms in more than half of the tickets are dropped at build time, so no list is long),
then reads the few tickets it found by number (unique index) and their first staff reply
(the (ticket, created_at) index): two queries, whatever the number of tickets.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from models import Ticket, TicketMessage
from triage.arrayfile import release_pages
from triage.saved import PickleWithArrays
from triage.textvec import hashed_counts, word_ngrams

logger = logging.getLogger(__name__)

INDEX_FILE = "similar-tickets.joblib"
LEAN_INDEX_FILE = "similar-tickets.arrays"  # the same index as plain arrays: readers need no scikit-learn
N_FEATURES = 2**20
OUTCOME_STATUSES = ("resolved", "closed")
MAX_INDEXED_TICKETS = 200_000
MAX_TEXT_CHARS = 2000
MIN_SIMILARITY = 0.15
MAX_COMMON_SHARE = 0.5  # terms in more tickets than this say nothing about similarity
REPLY_EXCERPT_CHARS = 400
READ_BATCH = 2000


def _hasher():
    """scikit-learn's hashing of the index at build time; `hashed_terms` is the same for one query."""
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(n_features=N_FEATURES, alternate_sign=False, norm=None, dtype=np.float32)


def hashed_terms(text: str) -> tuple[np.ndarray, np.ndarray]:
    """(hashed columns, float32 counts) of `text`: one row of `_hasher().transform([text])`."""
    return hashed_counts(word_ngrams(text, (1, 1)), N_FEATURES)


def index_text(subject: str, body: str) -> str:
    return f"{subject} {subject} {body[:MAX_TEXT_CHARS]}".lower()


@dataclass
class Postings:
    """CSR arrays of the terms x tickets matrix (what `nearest` reads of a scipy csr matrix)."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray


@dataclass
class SimilarIndex:
    idf: np.ndarray  # per hashed term, 0 for terms dropped as too common (float32)
    postings: Any  # Postings or a scipy csr matrix, terms x tickets: one row (an inverted list) per hashed term
    numbers: np.ndarray  # ticket number of each column

    @classmethod
    def build(cls, numbers: list[int], texts: list[str]) -> SimilarIndex:
        from sklearn.feature_extraction.text import TfidfTransformer

        counts = _hasher().transform(texts)
        transformer = TfidfTransformer(sublinear_tf=True).fit(counts)
        document_frequency = np.bincount(counts.indices, minlength=counts.shape[1])
        transformer.idf_ = np.where(document_frequency > MAX_COMMON_SHARE * len(texts), 0.0, transformer.idf_)
        matrix = transformer.transform(counts).astype(np.float32)
        matrix.eliminate_zeros()
        return cls(
            idf=np.asarray(transformer.idf_, dtype=np.float32),
            postings=matrix.T.tocsr(),
            numbers=np.asarray(numbers, dtype=np.int64),
        )

    def vector(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(terms, weights) of `text`: sublinear tf x idf, L2-normalised, as the indexed tickets were."""
        columns, counts = hashed_terms(text)
        weights = (1.0 + np.log(counts)) * self.idf[columns]
        keep = weights > 0
        terms, weights = columns[keep], weights[keep]
        norm = float(np.sqrt(np.dot(weights, weights)))
        return terms, (weights / norm if norm else weights)

    def nearest(self, text: str, before: int, count: int = 3) -> list[tuple[int, float]]:
        """Up to `count` (ticket number, cosine similarity) of tickets numbered below `before`, best first."""
        terms, weights = self.vector(text)
        if not len(terms):
            return []
        indptr, indices, data = self.postings.indptr, self.postings.indices, self.postings.data
        spans = [(int(indptr[t]), int(indptr[t + 1]), w) for t, w in zip(terms, weights, strict=True)]
        spans = [(a, b, w) for a, b, w in spans if b > a]
        if not spans:
            return []
        columns = np.concatenate([indices[a:b] for a, b, _ in spans])
        values = np.concatenate([data[a:b] * w for a, b, w in spans])
        release_pages(indptr, indices, data)  # read pages stay resident otherwise: memory would grow with the index
        scores = np.bincount(columns, weights=values, minlength=len(self.numbers))  # only the touched lists
        candidates = np.flatnonzero(scores >= MIN_SIMILARITY)
        candidates = candidates[self.numbers[candidates] < before]
        top = candidates[np.argsort(-scores[candidates], kind="stable")[:count]]
        return [(int(self.numbers[i]), round(float(scores[i]), 3)) for i in top]


def _index_arrays(index: SimilarIndex) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    postings = index.postings
    arrays: dict[str, np.ndarray] = {
        "idf": np.asarray(index.idf, dtype=np.float32),
        "indptr": np.asarray(postings.indptr, dtype=np.int64),
        "indices": np.asarray(postings.indices, dtype=np.int32),  # ticket columns: at most MAX_INDEXED_TICKETS
        "data": np.asarray(postings.data, dtype=np.float32),
        "numbers": np.asarray(index.numbers, dtype=np.int64),
    }
    return {"n_features": N_FEATURES}, arrays


def _index_from(meta: dict[str, Any], arrays: dict[str, Any]) -> SimilarIndex:
    if meta.get("n_features") != N_FEATURES:
        raise ValueError(f"index hashed into {meta.get('n_features')} columns, not {N_FEATURES}")
    postings = Postings(arrays["indptr"], arrays["indices"], arrays["data"])
    return SimilarIndex(idf=arrays["idf"], postings=postings, numbers=arrays["numbers"])


class SimilarIndexStore:
    """Loads the saved index from `model_dir` (memory-mapped), reloading when a rebuild replaced it: the plain
    arrays when they match the joblib file, else the joblib file (SciPy) as before (triage/saved.py)."""

    def __init__(self, model_dir: str) -> None:
        self._files = PickleWithArrays(
            os.path.join(model_dir, INDEX_FILE),
            os.path.join(model_dir, LEAN_INDEX_FILE),
            to_arrays=_index_arrays,
            from_arrays=_index_from,
            mmap_pickle=True,
        )
        self.path, self.lean_path = self._files.path, self._files.arrays_path

    def save(self, index: SimilarIndex) -> None:
        self._files.save(index)

    def remove(self) -> None:
        self._files.remove()

    def load(self) -> SimilarIndex | None:
        return self._files.load()


_STORES: dict[str, SimilarIndexStore] = {}


def index_store(model_dir: str) -> SimilarIndexStore:
    """One store per directory and process, so the file is mapped once."""
    return _STORES.setdefault(model_dir, SimilarIndexStore(model_dir))


def _outcome_texts(limit: int):
    """(number, text) of the newest resolved/closed tickets, read in batches (subject + first inbound text)."""
    tickets = Ticket._get_collection()
    messages = TicketMessage._get_collection()
    cursor = (
        tickets.find({"status": {"$in": list(OUTCOME_STATUSES)}}, {"number": 1, "subject": 1})
        .sort("created_at", -1)
        .limit(limit)
        .batch_size(READ_BATCH)
    )
    batch: list[dict] = []
    for ticket in cursor:
        batch.append(ticket)
        if len(batch) >= READ_BATCH:
            yield from _with_bodies(batch, messages)
            batch = []
    yield from _with_bodies(batch, messages)


def _with_bodies(batch: list[dict], messages):
    if not batch:
        return
    first: dict[Any, tuple[Any, str]] = {}
    found = messages.find(
        {"ticket": {"$in": [t["_id"] for t in batch]}, "kind": "inbound"},
        {"ticket": 1, "new_text": 1, "text": 1, "created_at": 1},
    )
    for message in found:
        known = first.get(message["ticket"])
        if known is None or (message.get("created_at") and known[0] and message["created_at"] < known[0]):
            first[message["ticket"]] = (message.get("created_at"), message.get("new_text") or message.get("text") or "")
    for ticket in batch:
        yield ticket["number"], index_text(ticket.get("subject") or "", first.get(ticket["_id"], (None, ""))[1])


def build_similar_index(model_dir: str, limit: int = MAX_INDEXED_TICKETS) -> int:
    """Rebuild the index from the database and save it beside the model; the number of tickets indexed."""
    rows = list(_outcome_texts(limit))
    store = index_store(model_dir)
    if not rows:  # nothing resolved (yet, or any more): no index rather than a stale one
        store.remove()
        return 0
    index = SimilarIndex.build([n for n, _ in rows], [t for _, t in rows])
    store.save(index)
    logger.info("similar-ticket index built on %s resolved tickets", len(rows))
    return len(rows)


def similar_tickets(index: SimilarIndex | None, subject: str, body: str, before: int, count: int = 3) -> list[dict]:
    """The `count` most similar earlier tickets: number, similarity, subject, status, category, first staff reply."""
    if index is None:
        return []
    found = index.nearest(index_text(subject, body), before, count)
    if not found:
        return []
    by_number = {
        t["number"]: t
        for t in Ticket._get_collection().find(
            {"number": {"$in": [n for n, _ in found]}}, {"number": 1, "subject": 1, "status": 1, "category": 1}
        )
    }
    replies: dict[Any, tuple[Any, str]] = {}
    staff_replies = TicketMessage._get_collection().find(
        {"ticket": {"$in": [t["_id"] for t in by_number.values()]}, "kind": "outbound", "author": {"$ne": None}},
        {"ticket": 1, "new_text": 1, "created_at": 1},
    )
    for message in staff_replies:
        known = replies.get(message["ticket"])
        if known is None or (message.get("created_at") and known[0] and message["created_at"] < known[0]):
            replies[message["ticket"]] = (message.get("created_at"), message.get("new_text") or "")
    similar = []
    for number, similarity in found:
        ticket = by_number.get(number)
        if ticket is None:  # deleted since the index was built
            continue
        reply = " ".join(replies.get(ticket["_id"], (None, ""))[1].split())
        similar.append(
            {
                "number": number,
                "similarity": similarity,
                "subject": (ticket.get("subject") or "")[:200],
                "status": ticket.get("status") or "",
                "category": ticket.get("category") or "",
                "reply": reply[:REPLY_EXCERPT_CHARS],
            }
        )
    return similar
