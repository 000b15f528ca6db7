"""The review queue's threshold is chosen from held-out data: the lowest confidence above which the offline
model's category is right at least 90% of the time; results above it are routed without review."""

from __future__ import annotations

import os

import pytest

from models import Ticket
from tests.triage_support import make_ticket
from triage import jobs
from triage.autoroute import applied, choose_threshold
from triage.local import ModelStore
from triage.similar import index_store
from triage.taxonomy import ensure_default_taxonomy

# (confidences, correct, threshold, share): ties at a threshold go together; at least `min_routed` results
CHOICES = [
    ([0.9, 0.8, 0.7, 0.6, 0.5], [True, True, True, False, False], 0.7, 0.6),
    ([0.9, 0.8, 0.7, 0.6, 0.5], [False, True, True, True, True], None, 0.0),
    ([0.9, 0.8, 0.8, 0.6], [True, True, False, True], 0.9, 0.25),
    ([0.9] * 10 + [0.4] * 10, [True] * 10 + [True] * 9 + [False], 0.4, 1.0),
]


@pytest.mark.parametrize("confidence,correct,threshold,share", CHOICES)
def test_threshold_is_the_lowest_with_ninety_percent_accuracy(confidence, correct, threshold, share):
    chosen = choose_threshold(correct, confidence, min_routed=1, z=0.0)
    assert chosen.threshold == threshold and chosen.share == pytest.approx(share)
    if threshold is not None:
        assert chosen.accuracy >= 0.9


def test_an_accuracy_measured_on_few_results_needs_a_margin():
    """19 of 20 right (0.95) is not enough evidence of 0.90; 190 of 200 is."""
    few = choose_threshold([True] * 19 + [False], [0.9] * 20, z=1.28)
    many = choose_threshold([True] * 190 + [False] * 10, [0.9] * 200, z=1.28)
    assert few.threshold is None
    assert many.threshold == 0.9 and many.accuracy == pytest.approx(0.95)


def test_too_few_results_above_a_threshold_are_not_trusted():
    assert choose_threshold([True] * 5, [0.9] * 5).threshold is None  # 5 < MIN_ROUTED


def test_a_threshold_applied_elsewhere_reports_share_and_accuracy():
    route = applied(0.5, [True, False, True, False], [0.9, 0.6, 0.4, 0.1])
    assert (route.share, route.accuracy) == (0.5, 0.5)
    assert applied(None, [True], [0.9]).as_dict() == {"threshold": None, "share": 0.0, "accuracy": None}


TOPICS = {
    "billing": "invoice charged twice refund payment card",
    "shipping": "parcel delivery tracking courier arrived",
    "account": "password login locked account reset",
}


@pytest.fixture()
def own_model(settings):
    """This test's model and index are trained on its own tickets: later tests must not inherit them."""
    yield
    for path in (ModelStore(settings.model_dir).path, index_store(settings.model_dir).path):
        if os.path.exists(path):
            os.remove(path)


def test_retrain_chooses_the_threshold_and_confident_tickets_skip_review(db, settings, own_model):
    ensure_default_taxonomy()
    for i in range(90):
        category = sorted(TOPICS)[i % 3]
        words = TOPICS[category].split()
        ticket = make_ticket(f"{words[i % 5]} question {i}", f"My {words[(i + 1) % 5]} and {words[(i + 2) % 5]} {i}")
        ticket.category, ticket.status = category, "resolved"
        ticket.triage.human_fields, ticket.triage.state = ["category"], "done"
        ticket.save()
    jobs.retrain_job(settings)
    route = ModelStore(settings.model_dir).load().auto_route
    assert route is not None and route["threshold"] is not None and route["accuracy"] >= 0.9

    clear = make_ticket("Charged twice", "My invoice was charged twice to my card, refund the payment.")
    vague = make_ticket("Hello", "Something about my thing, call me.")
    jobs.triage_job(settings)
    clear, vague = Ticket.objects(id=clear.id).get(), Ticket.objects(id=vague.id).get()
    assert clear.category == "billing" and clear.triage.confidence["category"] >= route["threshold"]
    assert "low confidence" not in (clear.triage.review_reason or "")  # priority confidence no longer decides
    assert vague.triage.confidence["category"] < route["threshold"]
    assert vague.triage.state == "review" and "low confidence: category" in vague.triage.review_reason
