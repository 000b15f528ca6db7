"""Train the offline model on one labelled CSV, score it on another, beside two baselines."""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import MultiLabelBinarizer

from triage.autoroute import applied, held_out_threshold
from triage.dataset import DatasetError, LabelledTicket
from triage.local import Example, OfflineModel, model_text
from triage.provider import Taxonomy, TriageInput

MIN_SKILL_COUNT = 2  # tags seen once in training cannot be learned; they stay out of the skill list


def taxonomy_from(rows: list[LabelledTicket]) -> Taxonomy:
    categories, priorities = Counter(r.category for r in rows), Counter(r.priority for r in rows)
    skills = Counter(t for r in rows for t in r.skills)
    return Taxonomy(
        categories=tuple(sorted(categories)),
        skills=tuple(sorted(s for s, n in skills.items() if n >= MIN_SKILL_COUNT)),
        priorities=tuple(sorted(priorities)),
        default_category=categories.most_common(1)[0][0],
        default_priority=priorities.most_common(1)[0][0],
    )


def _scores(truth: list[LabelledTicket], categories, priorities, skills) -> dict:
    y_cat, y_pri = [r.category for r in truth], [r.priority for r in truth]
    binarizer = MultiLabelBinarizer().fit([r.skills for r in truth] + list(skills))
    y_skills, p_skills = binarizer.transform([r.skills for r in truth]), binarizer.transform(list(skills))
    return {
        "category": {
            "accuracy": round(accuracy_score(y_cat, categories), 4),
            "macro_f1": round(f1_score(y_cat, categories, average="macro", zero_division=0), 4),
        },
        "priority": {
            "accuracy": round(accuracy_score(y_pri, priorities), 4),
            "macro_f1": round(f1_score(y_pri, priorities, average="macro", zero_division=0), 4),
        },
        "skills": {"f1_micro": round(f1_score(y_skills, p_skills, average="micro", zero_division=0), 4)},
    }


def _calibration(correct: list[bool], confidence: list[float]) -> dict:
    """Accuracy of the more confident half against the less confident half."""
    order = np.argsort(-np.asarray(confidence), kind="stable")
    half = len(order) // 2
    hits = np.asarray(correct)[order]
    return {
        "top_half_accuracy": round(float(hits[:half].mean()), 4) if half else None,
        "bottom_half_accuracy": round(float(hits[half:].mean()), 4) if len(order) - half else None,
    }


def _above(correct: list[bool], confidence: list[float], threshold: float) -> dict:
    """Share of tickets at or above a review threshold, and their accuracy (what skips the review queue)."""
    mask = np.asarray(confidence) >= threshold
    hits = np.asarray(correct)[mask]
    return {"share": round(float(mask.mean()), 4), "accuracy": round(float(hits.mean()), 4) if hits.size else None}


def offline_scores(train: list[LabelledTicket], test: list[LabelledTicket]) -> dict:
    taxonomy = taxonomy_from(train)
    examples = [
        Example(r.subject, r.body, r.category, r.priority, [t for t in r.skills if t in taxonomy.skills] or None)
        for r in train
    ]
    started = time.perf_counter()
    model = OfflineModel.train(taxonomy, examples, seeds=[], keywords={})
    trained = time.perf_counter()
    results = model.predict([TriageInput(r.subject, r.body) for r in test])
    predicted = time.perf_counter()
    scores = _scores(
        test, [x.category for x in results], [x.priority for x in results], [x.required_skills for x in results]
    )
    scores["calibration"] = {
        name: _calibration(
            [getattr(x, name) == getattr(r, name) for x, r in zip(results, test, strict=True)],
            [x.confidence.get(name, 0.0) for x in results],
        )
        for name in ("category", "priority")
    }
    scores["confident"] = {
        name: {
            str(threshold): _above(
                [getattr(x, name) == getattr(r, name) for x, r in zip(results, test, strict=True)],
                [x.confidence.get(name, 0.0) for x in results],
                threshold,
            )
            for threshold in (0.45, 0.55)
        }
        for name in ("category", "priority")
    }
    # the review threshold chosen on the training CSV alone (held-out folds), applied to the test CSV
    route = held_out_threshold(taxonomy, examples, seeds=[], keywords={})
    threshold = route.threshold if route is not None else None
    on_test = applied(
        threshold,
        [x.category == r.category for x, r in zip(results, test, strict=True)],
        [x.confidence.get("category", 0.0) for x in results],
    )
    scores["auto_route"] = on_test.as_dict()
    scores["auto_route_held_out"] = route.as_dict() if route is not None else None
    scores["train_seconds"] = round(trained - started, 2)
    scores["tickets_per_second"] = round(len(test) / max(predicted - trained, 1e-9), 1)
    return scores


def majority_scores(train: list[LabelledTicket], test: list[LabelledTicket]) -> dict:
    """Always the most common category and priority, and the most common tags (as many as a ticket has)."""
    category = Counter(r.category for r in train).most_common(1)[0][0]
    priority = Counter(r.priority for r in train).most_common(1)[0][0]
    size = max(1, round(np.mean([len(r.skills) for r in train])))
    tags = [t for t, _ in Counter(t for r in train for t in r.skills).most_common(size)]
    return _scores(test, [category] * len(test), [priority] * len(test), [tags] * len(test))


def logreg_scores(train: list[LabelledTicket], test: list[LabelledTicket]) -> dict:
    """Word TF-IDF + logistic regression per field; one-vs-rest for skills (top tag plus any >= 0.3)."""
    vectorizer = TfidfVectorizer(sublinear_tf=True)
    x_train = vectorizer.fit_transform([f"{r.subject} {r.body}" for r in train])
    x_test = vectorizer.transform([f"{r.subject} {r.body}" for r in test])
    predictions = {}
    for name in ("category", "priority"):
        labels = [getattr(r, name) for r in train]
        if len(set(labels)) < 2:
            predictions[name] = [labels[0]] * len(test)
        else:
            predictions[name] = list(LogisticRegression(max_iter=1000).fit(x_train, labels).predict(x_test))
    common = {t for t, n in Counter(t for r in train for t in r.skills).items() if n >= 5}
    skills: list[list[str]] = [[] for _ in test]
    targets = [[t for t in r.skills if t in common] for r in train]
    if len(common) >= 2:
        binarizer = MultiLabelBinarizer().fit(targets)
        classifier = OneVsRestClassifier(LogisticRegression(max_iter=1000, solver="liblinear"), n_jobs=1)
        proba = classifier.fit(x_train, binarizer.transform(targets)).predict_proba(x_test)
        for row, scores in enumerate(proba):
            chosen = {int(scores.argmax())} | {int(i) for i in np.flatnonzero(scores >= 0.3)}
            skills[row] = [str(binarizer.classes_[i]) for i in sorted(chosen)]
    return _scores(test, predictions["category"], predictions["priority"], skills)


def evaluate(train: list[LabelledTicket], test: list[LabelledTicket]) -> dict:
    """All three scorers on the same split, as one JSON-ready dict."""
    if len(train) < 2 or len({r.category for r in train}) < 1:
        raise DatasetError(f"the training file needs at least 2 usable rows, it has {len(train)}")
    if not test:
        raise DatasetError("the test file has no usable rows")
    return {
        "train_rows": len(train),
        "test_rows": len(test),
        "offline": offline_scores(train, test),
        "majority": majority_scores(train, test),
        "tfidf_logreg": logreg_scores(train, test),
    }


__all__ = ["evaluate", "model_text"]
