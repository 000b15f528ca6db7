"""The data model against the real embedded server."""

import threading

import pytest
from mongoengine import NotUniqueError

from models import MessageLedger, Ticket, User, ensure_all_indexes, next_ticket_number, queue_email
from models.users import staff_members


def test_user_email_is_unique_case_insensitively(db):
    User(email="Alice@Example.com", role="moderator").save()
    with pytest.raises(NotUniqueError):
        User(email="  alice@example.COM ", role="user").save()
    assert User.by_email("ALICE@example.com").role == "moderator"


def test_by_email_follows_an_email_change_and_heals_a_missing_key(db):
    user = User(email="old@example.com", role="moderator").save()
    user.email = "new@example.com"
    user.save()
    assert User.by_email("old@example.com") is None  # the old key must not find the renamed user
    assert User.by_email("NEW@example.com").id == user.id

    # A user written without its key (by hand, or a crash between the two writes).
    User._get_collection().insert_one({"email": "raw@example.com", "role": "user", "skills": [], "active": True})
    assert User.by_email("raw@example.com") is None
    assert User.by_email("raw@example.com", scan_if_unknown=True).email == "raw@example.com"
    User._get_db()["user_emails"].delete_many({"_id": "raw@example.com"})
    ensure_all_indexes()  # start-up writes the missing keys
    assert User.by_email("raw@example.com").email == "raw@example.com"


def test_staff_members_follow_role_changes_and_heal_at_start_up(db):
    ana = User(email="ana@example.com", role="moderator").save()
    User(email="customer@example.com", role="user").save()
    assert [u.email for u in staff_members()] == ["ana@example.com"]

    ana.role = "user"
    ana.save()
    bo = User(email="bo@example.com", role="user").save()
    bo.role = "admin"
    bo.save()
    assert [u.email for u in staff_members()] == ["bo@example.com"]
    User.objects(id=bo.id).update_one(set__active=False)  # a write that skips save(): read checks the user
    assert staff_members() == [] and [u.email for u in staff_members(active_only=False)] == ["bo@example.com"]

    User._get_collection().insert_one({"email": "raw@example.com", "role": "moderator", "skills": [], "active": True})
    assert staff_members(("moderator",)) == []
    ensure_all_indexes()  # start-up puts staff written by hand on the roster
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


def test_ticket_numbers_are_distinct_under_concurrency(db):
    numbers: list[int] = []
    lock = threading.Lock()

    def allocate() -> None:
        for _ in range(10):
            number = next_ticket_number()
            with lock:
                numbers.append(number)

    threads = [threading.Thread(target=allocate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(numbers) == list(range(1, 41))


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
    """Regression: mongoengine's icontains sent regex flags FerretDB rejects ("invalid flag in regex options: u")."""
    Ticket(
        number=1, subject="Printer ÄRGER on floor 3", requester_email="c@example.com", source_message_id="<1@x>"
    ).save()
    Ticket(number=2, subject="Invoice", requester_email="c@example.com", source_message_id="<2@x>").save()
    assert [t.number for t in Ticket.objects(subject__icontains="printer ärger")] == [1]
    assert [t.number for t in Ticket.objects(subject__istartswith="INVOICE")] == [2]
