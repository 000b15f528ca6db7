"""The offline model's prediction path without scikit-learn: numpy arithmetic on a plain-data file.

Training (triage/local.py) fits scikit-learn objects and `ModelStore.save` writes two files: the joblib
pickle (for retraining tools and older versions) and a plain-data form (vocabularies, idf, linear weights,
sigmoid calibration, the memory of labelled tickets; triage/arrayfile.py). The daemon and the web load the
plain-data form: numpy only, weights memory-mapped. A model saved before the plain-data form existed, or one
made from an older pickle, loads through joblib and scikit-learn as before (with a log line), and its
plain-data form is written then, so the next start skips scikit-learn.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from triage.arrayfile import FileRows
from triage.provider import Taxonomy, TriageInput, TriageResult
from triage.results import ResultBuilder
from triage.saved import PickleWithArrays, PlainForm
from triage.textvec import TfidfVocabulary

logger = logging.getLogger(__name__)

MODEL_FILE = "offline-model.joblib"
LEAN_MODEL_FILE = "offline-model.arrays"
FORMAT_VERSION = 1
NEIGHBOUR_SIMILARITY = 0.5  # measured: labels of neighbours this close agree ~97-100% of the time

ROWS_ON_DEMAND = ("category_weights", "priority_weights", "skill_weights")  # large; a ticket reads a few rows
GATHER_ELEMENTS = 1_000_000  # weight numbers copied at once (8 MB)
Vector = tuple[np.ndarray, np.ndarray]  # (columns ascending, values): one sparse row


def model_text(subject: str, body: str) -> str:
    """Subject counted twice: it carries more signal per word than the body."""
    return f"{subject} {subject} {body}".lower()


class Predictor(Protocol):
    taxonomy: Taxonomy
    auto_route: dict | None

    def predict(self, items: list[TriageInput]) -> list[TriageResult]: ...


def row_products(weights: np.ndarray | FileRows, rows: list[Vector]) -> np.ndarray:
    """`rows` (sparse) times `weights` (features x outputs): the needed weight rows are read once per chunk of
    rows, chunks kept to about GATHER_ELEMENTS numbers so a large batch does not copy half the matrix."""
    width = weights.shape[1]
    out = np.zeros((len(rows), width))
    start = 0
    while start < len(rows):
        end, size = start, 0
        while end < len(rows) and (end == start or (size + len(rows[end][0])) * width <= GATHER_ELEMENTS):
            size += len(rows[end][0])
            end += 1
        block = weights[np.concatenate([columns for columns, _ in rows[start:end]])]
        offset = 0
        for position in range(start, end):
            columns, values = rows[position]
            out[position] = values @ block[offset : offset + len(columns)]
            offset += len(columns)
        start = end
    return out


@dataclass
class CalibratedField:
    """Sigmoid-calibrated linear classifiers, one per fold, stacked: `weights` is (features, folds x outputs)."""

    classes: list[str]
    weights: np.ndarray | FileRows | None = None  # None: constant prediction of classes[0]
    intercept: np.ndarray | None = None
    slope: np.ndarray | None = None  # sigmoid a per fold and output
    offset: np.ndarray | None = None  # sigmoid b
    folds: int = 0

    def predict(self, rows: list[Vector]) -> tuple[list[str], np.ndarray]:
        if self.weights is None:
            return [self.classes[0]] * len(rows), np.full(len(rows), 0.3)
        assert self.intercept is not None
        decisions = row_products(self.weights, rows) + self.intercept
        proba = np.vstack([self.proba(d) for d in decisions]) if rows else np.zeros((0, len(self.classes)))
        best = proba.argmax(axis=1)
        return [self.classes[i] for i in best], proba.max(axis=1)

    def proba(self, decision: np.ndarray) -> np.ndarray:
        """CalibratedClassifierCV's sigmoid `predict_proba` from one row's decision values (folds x outputs),
        as `local._calibrated_proba`."""
        positive = (1.0 / (1.0 + np.exp(self.slope * decision + self.offset))).reshape(self.folds, -1)
        count = len(self.classes)
        if count == 2:
            proba = np.column_stack([1.0 - positive[:, 0], positive[:, 0]])
        else:
            sums = positive.sum(axis=1, keepdims=True)
            proba = np.divide(positive, sums, out=np.full_like(positive, 1.0 / count), where=sums > 0)
        return proba.sum(axis=0) / self.folds


@dataclass
class LeanModel(ResultBuilder):
    """The offline model for prediction only, read from its plain-data file."""

    taxonomy: Taxonomy
    words: TfidfVocabulary
    chars: TfidfVocabulary | None
    category: CalibratedField
    priority: CalibratedField
    keywords: dict[str, list[str]]
    skills_per_ticket: int = 1
    auto_route: dict | None = None
    skill_names: tuple[str, ...] = ()
    skill_weights: np.ndarray | FileRows | None = None  # ridge coef transposed: (word features, skills)
    skill_intercept: np.ndarray | None = None
    memory: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # word features x tickets, CSR arrays
    memory_labels: tuple[tuple[str | None, str | None, str], ...] = ()

    @property
    def skill_classes(self) -> list[str]:
        return list(self.skill_names)

    def predict(self, items: list[TriageInput]) -> list[TriageResult]:
        texts = [model_text(i.subject, i.body) for i in items]
        words = [self.words.vector(t) for t in texts]
        features = [self.features(t, w) for t, w in zip(texts, words, strict=True)]
        skill_scores = None
        if self.skill_weights is not None and self.skill_intercept is not None and words:
            skill_scores = row_products(self.skill_weights, words) + self.skill_intercept
        neighbours = [self.neighbour(w) for w in words]
        return self._results(
            items, texts, self.category.predict(features), self.priority.predict(features), skill_scores, neighbours
        )

    def features(self, text: str, words: Vector | None = None) -> Vector:
        """Word tf-idf, then character tf-idf in the columns after it (scikit-learn's `hstack`)."""
        words = self.words.vector(text) if words is None else words
        if self.chars is None:
            return words
        columns, values = self.chars.vector(text)
        return np.concatenate([words[0], columns + self.words.size]), np.concatenate([words[1], values])

    def neighbour(self, row: Vector) -> tuple[float, tuple[str | None, str | None, str]] | None:
        """The most similar human-labelled ticket (cosine of tf-idf rows) when at least NEIGHBOUR_SIMILARITY."""
        if self.memory is None or not self.memory_labels:
            return None
        indptr, indices, data = self.memory
        columns, values = row
        starts, ends = indptr[columns].tolist(), indptr[columns + 1].tolist()
        spans = list(zip(starts, ends, values.tolist(), strict=True))
        spans = [(a, b, w) for a, b, w in spans if b > a]
        if not spans:
            return None
        tickets = np.concatenate([indices[a:b] for a, b, _ in spans])
        weights = np.concatenate([data[a:b] * w for a, b, w in spans])
        similarity = np.bincount(tickets, weights=weights, minlength=len(self.memory_labels))
        best = int(similarity.argmax())
        if similarity[best] >= NEIGHBOUR_SIMILARITY:
            return float(similarity[best]), self.memory_labels[best]
        return None


def _field(meta: dict, arrays: dict[str, np.ndarray], name: str) -> CalibratedField:
    spec = meta[name]
    if spec.get("folds", 0) == 0:
        return CalibratedField(classes=spec["classes"])
    return CalibratedField(
        classes=spec["classes"],
        weights=arrays[f"{name}_weights"],
        intercept=arrays[f"{name}_intercept"],
        slope=arrays[f"{name}_slope"],
        offset=arrays[f"{name}_offset"],
        folds=spec["folds"],
    )


def _vocabulary(spec: dict | None, idf: np.ndarray | None) -> TfidfVocabulary | None:
    if spec is None or idf is None:
        return None
    return TfidfVocabulary(
        analyzer=spec["analyzer"],
        ngram_range=(spec["ngram_range"][0], spec["ngram_range"][1]),
        vocabulary={term: column for column, term in enumerate(spec["terms"])},
        idf=idf,
        sublinear_tf=spec["sublinear_tf"],
    )


def _taxonomy(saved: dict) -> Taxonomy:
    return Taxonomy(
        categories=tuple(saved["categories"]),
        skills=tuple(saved["skills"]),
        priorities=tuple(saved["priorities"]),
        default_category=saved["default_category"],
        default_priority=saved["default_priority"],
    )


def lean_model_from(meta: dict[str, Any], arrays: dict[str, Any]) -> LeanModel:
    """The model in a plain-data file's (meta, arrays) (numpy only)."""
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"plain-data model format {meta.get('format')!r} is not {FORMAT_VERSION}")
    words = _vocabulary(meta["words"], arrays["words_idf"])
    assert words is not None
    memory = None
    if "memory_indptr" in arrays:
        memory = (arrays["memory_indptr"], arrays["memory_indices"], arrays["memory_data"])
    return LeanModel(
        taxonomy=_taxonomy(meta["taxonomy"]),
        words=words,
        chars=_vocabulary(meta.get("chars"), arrays.get("chars_idf")),
        category=_field(meta, arrays, "category"),
        priority=_field(meta, arrays, "priority"),
        keywords=meta["keywords"],
        skills_per_ticket=meta["skills_per_ticket"],
        auto_route=meta["auto_route"],
        skill_names=tuple(meta.get("skill_classes") or ()),
        skill_weights=arrays.get("skill_weights"),
        skill_intercept=arrays.get("skill_intercept"),
        memory=memory,
        memory_labels=tuple((c, p, r) for c, p, r in meta.get("memory_labels") or []),
    )


def _plain_form(model: Any) -> PlainForm | None:
    return model.plain_form()


class ModelStore:
    """Loads the saved model from `model_dir`, reloading when a retrain replaced the file: the plain-data
    form when it matches the pickle, else the pickle through scikit-learn (triage/saved.py)."""

    def __init__(self, model_dir: str) -> None:
        self._files = PickleWithArrays(
            os.path.join(model_dir, MODEL_FILE),
            os.path.join(model_dir, LEAN_MODEL_FILE),
            to_arrays=_plain_form,
            from_arrays=lean_model_from,
            rows_on_demand=ROWS_ON_DEMAND,
        )
        self.path, self.lean_path = self._files.path, self._files.arrays_path

    def save(self, model: Any) -> None:
        """Write the pickle, then the plain-data form made from it."""
        self._files.save(model)

    def load(self) -> Predictor | None:
        return self._files.load()
