"""Batch triage: claims of a whole batch, one bulk write conditional on each claim, routing from one context."""

from __future__ import annotations

import threading

from models import AuditEvent, OutboundEmail, Ticket, TriageState, User
from tests.triage_support import make_staff, make_ticket
from triage import jobs
from triage.batch import triage_batch
from triage.provider import TriageInput
from triage.queue import claim_due, request_retriage
from triage.service import LocalProvider, build_provider
from triage.taxonomy import ensure_default_taxonomy, load_taxonomy


def test_four_workers_with_small_batches_triage_route_and_notify_each_ticket_once(db, settings):
    ensure_default_taxonomy()
    make_staff("pay@example.test", skills=["payments"])
    tickets = [make_ticket(f"Invoice {i}", "My card payment was charged twice") for i in range(60)]
    LocalProvider(settings).triage(TriageInput("warm", "up"), load_taxonomy())  # train once, outside the race
    small = type(settings)(**{**settings.__dict__, "triage_batch_size": 7})
    barrier = threading.Barrier(4)

    def daemon() -> None:
        barrier.wait()
        jobs.triage_job(small)

    threads = [threading.Thread(target=daemon) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for ticket in tickets:
        ticket.reload()
        assert ticket.triage.state in ("done", "review") and ticket.triage.attempts == 1
        assert ticket.triage.claimed_by is None and ticket.assignee is not None
        assert AuditEvent.objects(ticket_number=ticket.number).count() == 1
        assert OutboundEmail.objects(ticket_number=ticket.number, kind="notification").count() == 1


def test_a_batch_spreads_tickets_by_the_load_it_assigns(db, settings):
    """Open loads are read once per batch and counted as the batch assigns: equal moderators share a burst."""
    ensure_default_taxonomy()
    first = make_staff("a@example.test", skills=["payments", "refunds"])
    second = make_staff("b@example.test", skills=["payments", "refunds"])
    for i in range(3):
        make_ticket(f"old {i}", "x", assignee=first, status="open", triage=TriageState(state="done"))
    for i in range(9):
        make_ticket(f"Invoice {i}", "My card payment was charged twice, please refund the payment")
    jobs.triage_job(settings)
    loads = {u.email: Ticket.objects(assignee=u, status__in=["new", "open"]).count() for u in (first, second)}
    assert loads == {"a@example.test": 6, "b@example.test": 6}
    assert User.objects.get(id=second.id).last_assigned_at is not None


def test_a_ticket_whose_claim_was_taken_during_the_batch_keeps_the_new_claim(db, settings):
    """The bulk write is conditional on each claim: a re-triage requested meanwhile discards that one result."""
    ensure_default_taxonomy()
    make_staff("pay@example.test", skills=["payments"])
    for i in range(3):
        make_ticket(f"Invoice {i}", "My card payment was charged twice")
    claimed = claim_due("worker-1", limit=10)
    assert len(claimed) == 3
    request_retriage(claimed[1])  # a moderator asks for a fresh triage while the batch runs
    outcome = triage_batch(claimed, "worker-1", build_provider(settings), load_taxonomy(), settings)
    assert (outcome.written, outcome.lost, outcome.routed) == (2, 1, 2)
    states = {t.number: t.reload().triage.state for t in claimed}
    assert states[claimed[1].number] == "pending" and claimed[1].assignee is None
    assert OutboundEmail.objects(ticket_number=claimed[1].number).count() == 0
    assert all(states[t.number] in ("done", "review") for t in (claimed[0], claimed[2]))


def test_a_ticket_assigned_by_a_person_during_the_batch_keeps_that_assignee(db, settings):
    ensure_default_taxonomy()
    make_staff("pay@example.test", skills=["payments"])
    person = make_staff("lead@example.test", skills=[])
    ticket = make_ticket("Invoice", "My card payment was charged twice")
    claimed = claim_due("worker-1")
    Ticket.objects(id=ticket.id).update(set__assignee=person)  # the panel's "assign" between claim and write
    outcome = triage_batch(claimed, "worker-1", build_provider(settings), load_taxonomy(), settings)
    ticket.reload()
    assert (outcome.written, outcome.routed) == (1, 0)
    assert ticket.triage.state in ("done", "review") and ticket.assignee == person
    assert OutboundEmail.objects(ticket_number=ticket.number).count() == 0
    assert AuditEvent.objects(ticket_number=ticket.number).count() == 0


def test_an_email_without_a_recognisable_language_is_triaged(db, settings):
    """Regression: writing `language: null` failed on the text index (its language override field), so a ticket
    whose text had no English or German stop words failed every attempt and ended escalated."""
    ensure_default_taxonomy()
    make_staff("admin@example.test", role="admin")
    ticket = make_ticket("Hallo", "Xyz 123")
    jobs.triage_job(settings)
    ticket.reload()
    assert ticket.triage.state in ("done", "review") and ticket.triage.attempts == 1
    assert ticket.triage.last_error is None and not ticket.language


def test_a_pass_told_to_give_way_triages_one_batch_and_the_next_pass_the_rest(db, settings):
    """While intake has a backlog the daemon asks each triage pass to stop after a batch; nothing is skipped."""
    ensure_default_taxonomy()
    make_staff("pay@example.test", skills=["payments"])
    for i in range(12):
        make_ticket(f"Invoice {i}", "My card payment was charged twice")
    small = type(settings)(**{**settings.__dict__, "triage_batch_size": 5})
    jobs.triage_job(small, keep_going=lambda: False)
    assert Ticket.objects(triage__state__in=["done", "review"]).count() == 5
    jobs.triage_job(small)
    assert Ticket.objects(triage__state__in=["done", "review"]).count() == 12
