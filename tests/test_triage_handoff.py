"""New tickets handed from intake to the daemon's triage in memory (daemon/handoff.py): inserted claimed, triaged
once, and never stranded when the daemon stops or dies."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from daemon import handoff
from daemon.bulk import ingest_batch
from daemon.outcomes import Created
from models import OutboundEmail, Ticket, utcnow
from tests.daemon_support import raw_email
from tests.triage_support import make_staff
from triage import jobs
from triage.batch import triage_batch
from triage.queue import claim_due
from triage.service import build_provider
from triage.taxonomy import ensure_default_taxonomy, load_taxonomy


@pytest.fixture
def handing(db: str) -> Iterator[str]:
    """Hand-over on, as the daemon turns it on with the offline model; off (nothing queued) afterwards."""
    owner = handoff.enable()
    yield owner
    handoff.release_all()


def _burst(settings, count: int) -> list[int]:
    ensure_default_taxonomy()
    make_staff("pay@example.test", skills=["payments", "refunds"])
    raws = [
        raw_email(subject=f"Invoice {i}", body="My card payment was charged twice", sender=f"c{i}@customer.example")
        for i in range(count)
    ]
    outcomes = ingest_batch([(f"test#{i}", raw) for i, raw in enumerate(raws)], settings)
    assert all(isinstance(o, Created) for o in outcomes)
    return [o.ticket_number for o in outcomes]


def test_new_tickets_handed_over_are_triaged_routed_and_notified_once(handing, settings):
    numbers = _burst(settings, 12)
    stored = Ticket.objects(number__in=numbers)
    assert {(t.triage.state, t.triage.claimed_by) for t in stored} == {("running", handing)}
    assert claim_due("another-daemon", limit=50) == []  # claimed by this daemon: no one else takes them

    small = type(settings)(**{**settings.__dict__, "triage_batch_size": 5})
    jobs.triage_job(small, handed=handoff)

    assert handoff.queued() == 0
    for ticket in Ticket.objects(number__in=numbers):
        assert ticket.triage.state in ("done", "review") and ticket.triage.attempts == 1
        assert ticket.triage.claimed_by is None and ticket.assignee is not None
        assert OutboundEmail.objects(ticket_number=ticket.number, kind="notification").count() == 1


def test_a_clean_stop_gives_queued_tickets_back_to_the_triage_queue_at_once(handing, settings):
    numbers = _burst(settings, 4)

    assert handoff.release_all() == 4

    assert handoff.new_claim() is None  # no longer handing over
    for ticket in Ticket.objects(number__in=numbers):
        assert (ticket.triage.state, ticket.triage.claimed_by, ticket.triage.attempts) == ("pending", None, 0)
    jobs.triage_job(settings)  # the next daemon, or this one after a restart, claims them as usual
    assert Ticket.objects(number__in=numbers, triage__state__in=["done", "review"], triage__attempts=1).count() == 4


def test_tickets_of_a_daemon_that_died_are_claimed_by_another_once_their_lease_expires(handing, settings):
    numbers = _burst(settings, 3)
    later = utcnow() + dt.timedelta(seconds=handoff.LEASE_SECONDS + 1)

    assert handoff.take(10, now=later) == []  # left in memory too long: never triaged from there as well
    taken = claim_due("survivor", limit=10, now=later)

    assert sorted(t.number for t in taken) == numbers
    outcome = triage_batch(taken, "survivor", build_provider(settings), load_taxonomy(), settings)
    assert (outcome.written, outcome.lost) == (3, 0)
    for ticket in Ticket.objects(number__in=numbers):
        assert ticket.triage.state in ("done", "review") and ticket.triage.attempts == 2


def test_a_result_from_the_hand_over_is_discarded_once_another_daemon_took_the_ticket_over(handing, settings):
    """A daemon stalled past its lease: another claimed the ticket; the stalled one's result must not land too."""
    numbers = _burst(settings, 2)
    held = handoff.take(10)
    later = utcnow() + dt.timedelta(seconds=handoff.LEASE_SECONDS + 1)
    assert len(claim_due("survivor", limit=10, now=later)) == 2

    outcome = triage_batch(held, handing, build_provider(settings), load_taxonomy(), settings)

    assert (outcome.written, outcome.lost) == (0, 2)
    for ticket in Ticket.objects(number__in=numbers):
        assert (ticket.triage.state, ticket.triage.claimed_by) == ("running", "survivor")
        assert OutboundEmail.objects(ticket_number=ticket.number, kind="notification").count() == 0


def test_without_hand_over_new_tickets_wait_unclaimed_in_the_triage_queue(db, settings):
    numbers = _burst(settings, 2)
    for ticket in Ticket.objects(number__in=numbers):
        assert (ticket.triage.state, ticket.triage.claimed_by) == ("pending", None)
