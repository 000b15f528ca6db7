"""Which offline results skip the review queue: the confidence threshold is chosen from held-out data.

At each retrain the labelled tickets are split into folds; a model trained on the other folds (and the
taxonomy seeds) labels each fold, and the threshold is the lowest category confidence above which those
held-out labels are right at least TARGET_ACCURACY of the time. Results at or above it are routed without
review; the rest wait in the review queue. "Right at least TARGET_ACCURACY of the time" is judged with a margin
for the number of held-out results (the Wilson lower bound of their accuracy).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from triage.provider import Taxonomy, TriageInput

TARGET_ACCURACY = 0.90
MIN_ROUTED = 20  # held-out tickets above a threshold before its accuracy is trusted
# The held-out accuracy must reach the target with this margin (one-sided 90%): measured on a few dozen tickets it
# is noisy, and a threshold chosen where it just touched 0.90 held 0.87 on average on unseen tickets (5 splits of
# the shared tickets; 0.91 with the margin, for a share of 13% instead of 15%).
WILSON_Z = 1.28
FOLDS = 3


@dataclass(frozen=True)
class AutoRoute:
    threshold: float | None  # None: no threshold reached the target (everything goes to review)
    share: float  # held-out share at or above the threshold
    accuracy: float | None  # held-out category accuracy of that share

    def as_dict(self) -> dict:
        threshold = None if self.threshold is None else round(self.threshold, 4)
        accuracy = None if self.accuracy is None else round(self.accuracy, 4)
        return {"threshold": threshold, "share": round(self.share, 4), "accuracy": accuracy}


def choose_threshold(
    correct: list[bool],
    confidence: list[float],
    target: float = TARGET_ACCURACY,
    min_routed: int = MIN_ROUTED,
    z: float = WILSON_Z,
) -> AutoRoute:
    """The lowest confidence c such that results with confidence >= c are right >= `target` of the time, judged by
    the Wilson lower bound of their accuracy (`z` = 0: the accuracy itself)."""
    if not correct:
        return AutoRoute(None, 0.0, None)
    scores, hits = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=float)
    order = np.argsort(-scores, kind="stable")
    scores, hits = scores[order], hits[order]
    routed = np.arange(1, len(hits) + 1)
    accuracy = np.cumsum(hits) / routed
    last_of_value = np.r_[scores[1:] != scores[:-1], True]  # a threshold takes every tie of its value
    trusted = wilson_lower_bound(accuracy, routed, z) >= target
    usable = np.flatnonzero(last_of_value & trusted & (routed >= min_routed))
    if not len(usable):
        return AutoRoute(None, 0.0, None)
    cut = int(usable.max())
    return AutoRoute(float(scores[cut]), (cut + 1) / len(hits), float(accuracy[cut]))


def wilson_lower_bound(accuracy: np.ndarray, n: np.ndarray, z: float) -> np.ndarray:
    """The lower end of the Wilson score interval of an accuracy measured on n results."""
    centre = accuracy + z * z / (2 * n)
    spread = z * np.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n)


def applied(threshold: float | None, correct: list[bool], confidence: list[float]) -> AutoRoute:
    """What a threshold chosen elsewhere does on these results."""
    if threshold is None or not correct:
        return AutoRoute(threshold, 0.0, None)
    mask = np.asarray(confidence) >= threshold
    hits = np.asarray(correct)[mask]
    return AutoRoute(threshold, float(mask.mean()), float(hits.mean()) if hits.size else None)


def held_out_threshold(
    taxonomy: Taxonomy, examples: list, seeds: list, keywords: dict, folds: int = FOLDS
) -> AutoRoute | None:
    """Choose the threshold on out-of-fold predictions of the examples that carry a category (None when there
    are too few of them to judge: the configured TRIAGE_REVIEW_THRESHOLD applies then)."""
    from triage.local import OfflineModel

    labelled = [e for e in examples if e.category]
    if len(labelled) < folds * MIN_ROUTED:
        return None
    order = list(range(len(labelled)))
    random.Random(0).shuffle(order)
    correct: list[bool] = []
    confidence: list[float] = []
    for fold in range(folds):
        held = [labelled[i] for i in order[fold::folds]]
        rest = [labelled[i] for k, i in enumerate(order) if k % folds != fold]
        model = OfflineModel.train(taxonomy, rest, seeds, keywords)
        results = model.predict([TriageInput(e.subject, e.body) for e in held])
        correct += [r.category == e.category for r, e in zip(results, held, strict=True)]
        confidence += [r.confidence.get("category", 0.0) for r in results]
    return choose_threshold(correct, confidence)
