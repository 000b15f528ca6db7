"""The fitted offline model as plain data (JSON-able meta plus numpy arrays) for triage/runtime.py.

Only the settings the runtime reproduces are accepted: anything else (another analyzer, stop words, a
custom tokenizer, an uncalibrated classifier) gives None, and the model is then loaded from its pickle.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np

from triage.runtime import FORMAT_VERSION
from triage.textvec import TOKEN_PATTERN

logger = logging.getLogger(__name__)


class Unsupported(ValueError):
    """A fitted object has a setting the runtime does not reproduce."""


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise Unsupported(what)


def _vectorizer(vectorizer: Any, name: str) -> tuple[dict, np.ndarray]:
    """Settings and terms (in column order) of a fitted TfidfVectorizer, and its idf."""
    params = vectorizer.get_params()
    _require(params["analyzer"] in ("word", "char_wb"), f"{name}: analyzer {params['analyzer']!r}")
    _require(params["input"] == "content" and params["lowercase"], f"{name}: input/lowercase")
    _require(
        all(params[k] is None for k in ("preprocessor", "tokenizer", "stop_words", "strip_accents")),
        f"{name}: custom preprocessing",
    )
    _require(params["analyzer"] != "word" or params["token_pattern"] == TOKEN_PATTERN.pattern, f"{name}: pattern")
    _require(not params["binary"] and params["use_idf"] and params["norm"] == "l2", f"{name}: tf-idf options")
    terms: list[str | None] = [None] * len(vectorizer.vocabulary_)
    for term, column in vectorizer.vocabulary_.items():
        terms[int(column)] = term
    _require(all(t is not None for t in terms), f"{name}: vocabulary has gaps")
    spec = {
        "analyzer": params["analyzer"],
        "ngram_range": list(params["ngram_range"]),
        "sublinear_tf": bool(params["sublinear_tf"]),
        "terms": terms,
    }
    return spec, np.asarray(vectorizer.idf_, dtype=np.float64)


def _calibrated(field: Any, name: str, arrays: dict[str, np.ndarray]) -> dict:
    """A `_FieldModel`: constant, or per-fold LinearSVC weights and sigmoid (a, b), stacked fold after fold."""
    if field.classifier is None:
        return {"classes": [str(c) for c in field.classes], "folds": 0}
    classifier = field.classifier
    _require(hasattr(classifier, "calibrated_classifiers_"), f"{name}: not a calibrated classifier")
    _require(getattr(classifier, "method", "sigmoid") == "sigmoid", f"{name}: calibration method")
    weights, intercepts, slopes, offsets = [], [], [], []
    for fold in classifier.calibrated_classifiers_:
        coef = np.asarray(fold.estimator.coef_, dtype=np.float64)
        _require(len(fold.calibrators) == coef.shape[0], f"{name}: calibrators per output")
        weights.append(coef.T)
        intercepts.append(np.broadcast_to(np.asarray(fold.estimator.intercept_, dtype=np.float64), coef.shape[:1]))
        slopes.append([float(c.a_) for c in fold.calibrators])
        offsets.append([float(c.b_) for c in fold.calibrators])
    arrays[f"{name}_weights"] = np.ascontiguousarray(np.hstack(weights))  # (features, folds x outputs)
    arrays[f"{name}_intercept"] = np.concatenate(intercepts)
    arrays[f"{name}_slope"] = np.asarray(slopes, dtype=np.float64).ravel()
    arrays[f"{name}_offset"] = np.asarray(offsets, dtype=np.float64).ravel()
    return {"classes": [str(c) for c in classifier.classes_], "folds": len(classifier.calibrated_classifiers_)}


def plain_form(model: Any) -> tuple[dict, dict[str, np.ndarray]] | None:
    """(meta, arrays) of a trained `OfflineModel`, or None when it uses a setting the runtime lacks."""
    try:
        return _plain_form(model)
    except Unsupported as reason:
        logger.warning("no plain-data form for the offline model: %s", reason)
        return None


def _plain_form(model: Any) -> tuple[dict, dict[str, np.ndarray]]:
    arrays: dict[str, np.ndarray] = {}
    words, arrays["words_idf"] = _vectorizer(model.vectorizer, "words")
    chars = None
    if getattr(model, "char_vectorizer", None) is not None:
        chars, arrays["chars_idf"] = _vectorizer(model.char_vectorizer, "chars")
    meta: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "taxonomy": dataclasses.asdict(model.taxonomy),
        "keywords": getattr(model, "keywords", {}),
        "skills_per_ticket": int(getattr(model, "skills_per_ticket", 1)),
        "auto_route": getattr(model, "auto_route", None),
        "words": words,
        "chars": chars,
        "category": _calibrated(model.category, "category", arrays),
        "priority": _calibrated(model.priority, "priority", arrays),
    }
    if getattr(model, "skills", None) is not None:
        coef = np.asarray(model.skills.coef_, dtype=np.float64)
        _require(coef.ndim == 2 and coef.shape[0] == len(model.skill_binarizer.classes_), "skills: shape")
        arrays["skill_weights"] = np.ascontiguousarray(coef.T)  # (word features, skills)
        arrays["skill_intercept"] = np.broadcast_to(
            np.asarray(model.skills.intercept_, dtype=np.float64), coef.shape[:1]
        ).copy()
        meta["skill_classes"] = [str(c) for c in model.skill_binarizer.classes_]
    if getattr(model, "memory", None) is not None:
        transposed = getattr(model, "memory_t", None)
        transposed = (model.memory.T if transposed is None else transposed).tocsr()  # older pickles lack memory_t
        transposed.sort_indices()
        arrays["memory_indptr"] = np.asarray(transposed.indptr, dtype=np.int64)
        arrays["memory_indices"] = np.asarray(transposed.indices, dtype=np.int32)
        arrays["memory_data"] = np.asarray(transposed.data, dtype=np.float64)
        meta["memory_labels"] = [list(label) for label in model.memory_labels]
    return meta, arrays
