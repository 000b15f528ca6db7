"""The durable triage queue: exclusive claims, back-off, escalation after the last attempt."""

from __future__ import annotations

import datetime as dt
import threading

from models import AuditEvent, OutboundEmail, Ticket, utcnow
from tests.triage_support import make_staff, make_ticket
from triage import jobs
from triage.provider import ProviderError, TriageInput
from triage.queue import claim_due, request_retriage
from triage.service import LocalProvider
from triage.taxonomy import ensure_default_taxonomy, load_taxonomy


def test_two_workers_never_claim_the_same_ticket(db):
    tickets = [make_ticket(f"Invoice {i}", "I was charged twice") for i in range(12)]
    claimed: dict[str, list[int]] = {}
    barrier = threading.Barrier(2)

    def work(name: str) -> None:
        barrier.wait()
        got = []
        for _ in range(6):
            got += [t.number for t in claim_due(name, limit=3)]
        claimed[name] = got

    threads = [threading.Thread(target=work, args=(n,)) for n in ("worker-a", "worker-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    all_claims = claimed["worker-a"] + claimed["worker-b"]
    assert sorted(all_claims) == sorted(t.number for t in tickets)  # each exactly once, none lost
    for ticket in Ticket.objects:
        assert ticket.triage.state == "running" and ticket.triage.attempts == 1


def test_expired_lease_is_claimed_again_as_a_new_attempt(db):
    ticket = make_ticket("VPN down", "The VPN disconnects")
    assert [t.number for t in claim_due("crashed-worker", lease_seconds=60)] == [ticket.number]
    assert claim_due("other") == []  # the lease still holds
    later = utcnow() + dt.timedelta(seconds=61)
    again = claim_due("other", now=later)
    assert [t.number for t in again] == [ticket.number] and again[0].triage.attempts == 2


def test_triage_job_classifies_routes_and_notifies(db, settings):
    ensure_default_taxonomy()
    moderator = make_staff("billing@example.test", skills=["payments", "refunds"])
    ticket = make_ticket("Charged twice for my invoice", "My credit card payment was charged twice, please refund.")
    jobs.triage_job(settings)
    ticket.reload()
    assert ticket.triage.state in ("done", "review") and ticket.triage.provider == "local"
    assert ticket.category == "billing" and "payments" in ticket.required_skills
    assert ticket.assignee == moderator and "matched" in ticket.routing_reason
    mail = OutboundEmail.objects(ticket_number=ticket.number).get()
    assert mail.to == [moderator.email] and f"/tickets/{ticket.number}" in mail.text
    assert mail.subject.startswith(f"[#{ticket.number}]")


def test_ticket_whose_triage_keeps_failing_ends_escalated(db, settings, monkeypatch):
    ensure_default_taxonomy()
    admin = make_staff("admin@example.test", role="admin")

    def broken(self, item, taxonomy):
        raise ProviderError("model exploded")

    monkeypatch.setattr(LocalProvider, "triage_many", broken)
    ticket = make_ticket("Anything", "Hello")
    clock = utcnow()
    for attempt in range(1, settings.triage_max_attempts + 1):
        Ticket.objects(id=ticket.id).update(set__triage__next_attempt_at=clock)  # skip the back-off wait
        jobs.triage_job(settings)
        ticket.reload()
        assert ticket.triage.attempts == attempt
        if attempt < settings.triage_max_attempts:
            assert ticket.triage.state == "pending" and ticket.triage.next_attempt_at > utcnow()
    assert ticket.triage.state == "failed" and "model exploded" in ticket.triage.last_error
    assert ticket.status == "escalated" and ticket.assignee == admin
    assert "triage failed after 5 attempts" in ticket.escalation_reason
    assert AuditEvent.objects(ticket_number=ticket.number, action="escalate").count() == 1
    assert OutboundEmail.objects(ticket_number=ticket.number, to=admin.email).count() == 1


def test_backoff_doubles_between_attempts(db, settings, monkeypatch):
    monkeypatch.setattr(LocalProvider, "triage_many", lambda self, i, t: (_ for _ in ()).throw(ProviderError("x")))
    ticket = make_ticket("A", "B")
    delays = []
    for _ in range(3):
        Ticket.objects(id=ticket.id).update(set__triage__next_attempt_at=utcnow())
        before = utcnow()
        jobs.triage_job(settings)
        ticket.reload()
        delays.append((ticket.triage.next_attempt_at - before).total_seconds())
    assert 29 <= delays[0] <= 32 and 59 <= delays[1] <= 62 and 119 <= delays[2] <= 122


def test_request_retriage_makes_a_done_ticket_due_again(db, settings):
    ticket = make_ticket("Password reset", "I cannot log in to my account")
    jobs.triage_job(settings)
    ticket.reload()
    assert ticket.triage.state in ("done", "review")
    request_retriage(ticket)
    assert ticket.triage.state == "pending" and ticket.triage.attempts == 0
    assert [t.number for t in claim_due("w")] == [ticket.number]  # a fresh generation, not a stale claim


def test_two_daemons_running_the_job_triage_and_notify_each_ticket_once(db, settings):
    ensure_default_taxonomy()
    make_staff("pay@example.test", skills=["payments"])
    tickets = [make_ticket(f"Invoice {i}", "My card payment was charged twice") for i in range(10)]
    LocalProvider(settings).triage(TriageInput("warm", "up"), load_taxonomy())  # train once, outside the race
    barrier = threading.Barrier(2)

    def daemon() -> None:
        barrier.wait()
        jobs.triage_job(settings)

    threads = [threading.Thread(target=daemon) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for ticket in tickets:
        ticket.reload()
        assert ticket.triage.state in ("done", "review") and ticket.triage.attempts == 1
        assert AuditEvent.objects(ticket_number=ticket.number, action="assign").count() == 1
        assert OutboundEmail.objects(ticket_number=ticket.number).count() == 1
