"""The data model against the real embedded server."""

import threading

import pytest
from mongoengine import NotUniqueError

from models import (
    MessageLedger,
    OutboundEmail,
    Ticket,
    User,
    ensure_all_indexes,
    next_ticket_number,
    next_ticket_numbers,
    queue_email,
)
from models.users import staff_members


def test_user_email_is_unique_case_insensitively(db):
    User(email="Alice@Example.com", role="moderator").save()
    with pytest.raises(NotUniqueError):
        User(email="  alice@example.COM ", role="user").save()
    assert User.by_email("ALICE@example.com").role == "moderator"


def test_by_email_follows_an_email_change_and_finds_users_written_by_hand(db):
    user = User(email="old@example.com", role="moderator").save()
    user.email = "new@example.com"
    user.save()
    assert User.by_email("old@example.com") is None
    assert User.by_email("NEW@example.com").id == user.id
    # a user written without mongoengine (a script, a restore) is found at once: no key to backfill
    User._get_collection().insert_one({"email": "raw@example.com", "role": "user", "skills": [], "active": True})
    assert User.by_email("Raw@Example.com").email == "raw@example.com"


def test_staff_members_follow_role_and_active_changes_without_a_restart(db):
    ana = User(email="ana@example.com", role="moderator").save()
    User(email="customer@example.com", role="user").save()
    assert [u.email for u in staff_members()] == ["ana@example.com"]

    ana.role = "user"
    ana.save()
    bo = User(email="bo@example.com", role="user").save()
    bo.role = "admin"
    bo.save()
    assert [u.email for u in staff_members()] == ["bo@example.com"]
    User.objects(id=bo.id).update_one(set__active=False)  # a write that skips save()
    assert staff_members() == [] and [u.email for u in staff_members(active_only=False)] == ["bo@example.com"]

    User._get_collection().insert_one({"email": "raw@example.com", "role": "moderator", "skills": [], "active": True})
    assert [u.email for u in staff_members(("moderator",))] == ["raw@example.com"]


def test_password_is_hashed_and_verified(db):
    user = User(email="a@example.com", role="admin")
    user.set_password("correct horse battery")
    user.save()
    stored = User.objects.get(id=user.id)
    assert "correct horse" not in stored.password_hash
    assert stored.check_password("correct horse battery")
    assert not stored.check_password("wrong password!")


def test_weak_password_is_refused():
    with pytest.raises(ValueError, match="at least"):
        User(email="a@example.com").set_password("short")


def test_ticket_numbers_are_unique_and_gapless_under_four_threads(db):
    numbers: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def allocate() -> None:
        barrier.wait()
        for _ in range(50):
            number = next_ticket_number()
            with lock:
                numbers.append(number)

    threads = [threading.Thread(target=allocate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(numbers) == list(range(1, 201))


def test_batch_of_ticket_numbers_is_a_range_that_single_numbers_continue(db):
    assert next_ticket_numbers(3) == [1, 2, 3]
    assert next_ticket_number() == 4
    assert next_ticket_numbers(0) == []


def test_counter_starts_above_tickets_stored_without_it(db):
    """A database restored or written without the counter: start-up sets it above the highest number."""
    Ticket(number=41, requester_email="c@example.com", source_message_id="<41@x>").save()
    Ticket._get_db()["counters"].delete_many({})
    ensure_all_indexes()
    assert next_ticket_number() == 42


def test_counter_behind_the_stored_tickets_is_raised_at_start_up(db):
    """A counter older than the tickets (e.g. restored from an earlier backup): start-up moves it past them."""
    ensure_all_indexes()
    Ticket._get_db()["counters"].update_one({"_id": "ticket_number"}, {"$set": {"value": 5}})
    Ticket(number=57, requester_email="c@example.com", source_message_id="<57@x>").save()
    ensure_all_indexes()
    assert next_ticket_number() == 58


def test_start_up_replaces_an_older_databases_full_indexes_with_partial_ones(db):
    """A database from before the partial indexes: start-up drops the full ones (each costs every ticket insert
    and every "sent" mark) and creates the partial ones; the filters they served still read an index."""
    tickets, outbox = Ticket._get_collection(), OutboundEmail._get_collection()
    for name in ("triage_lease_running", "sla_breached_status_true", "escalated_at_true"):
        tickets.drop_index(name)
    tickets.create_index([("triage.state", 1), ("triage.lease_until", 1)])
    tickets.create_index([("required_skills", 1)])
    outbox.drop_index("due_queued")
    outbox.create_index([("state", 1), ("next_attempt_at", 1)])
    ensure_all_indexes()
    ticket_indexes, outbox_indexes = tickets.index_information(), outbox.index_information()
    assert "triage.state_1_triage.lease_until_1" not in ticket_indexes and "required_skills_1" not in ticket_indexes
    assert ticket_indexes["triage_lease_running"]["partialFilterExpression"] == {"triage.state": "running"}
    assert "state_1_next_attempt_at_1" not in outbox_indexes
    assert outbox_indexes["due_queued"]["partialFilterExpression"] == {"state": "queued"}
    ensure_all_indexes()  # idempotent


def test_start_up_recreates_a_missing_index_and_leaves_a_complete_set_alone(db):
    """Start-up compares index names and creates only what is missing: an index dropped by hand comes back."""
    tickets = Ticket._get_collection()
    tickets.drop_index("source_message_id_1")
    tickets.drop_index("ticket_text")
    ensure_all_indexes()
    indexes = tickets.index_information()
    assert indexes["source_message_id_1"].get("unique") is True
    assert "ticket_text" in indexes
    ensure_all_indexes()
    assert tickets.index_information() == indexes


def test_ticket_source_message_id_is_unique(db):
    Ticket(number=1, requester_email="c@example.com", source_message_id="<a@b>").save()
    with pytest.raises(NotUniqueError):
        Ticket(number=2, requester_email="c@example.com", source_message_id="<a@b>").save()


def test_queued_email_is_recorded_in_the_ledger_for_threading(db):
    email = queue_email(
        kind="ack",
        to=["c@example.com"],
        subject="[#5] Hi",
        text="t",
        domain="example.test",
        ticket_number=5,
        headers={"Auto-Submitted": "auto-replied"},
    )
    entry = MessageLedger.objects.get(message_id=email.message_id)
    assert entry.ticket_number == 5
    assert entry.direction == "out"
    assert email.headers[0].name == "Auto-Submitted"


def test_case_insensitive_search_works_on_the_embedded_server(db):
    """Regression: FerretDB 1 rejected the "u" flag mongoengine's icontains sends; FerretDB 2 takes it unpatched."""
    Ticket(
        number=1, subject="Printer ÄRGER on floor 3", requester_email="c@example.com", source_message_id="<1@x>"
    ).save()
    Ticket(number=2, subject="Invoice", requester_email="c@example.com", source_message_id="<2@x>").save()
    assert [t.number for t in Ticket.objects(subject__icontains="printer ärger")] == [1]
    assert [t.number for t in Ticket.objects(subject__istartswith="INVOICE")] == [2]
