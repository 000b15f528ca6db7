"""Database writes for ingestion: requesters, attachments, tickets and their thread entries.

Every write is ordered so that a crash midway can be retried: unique keys (ticket number, source
Message-ID, thread-entry Message-ID, user email) turn a repeated insert into "already there".
Single-message and batch intake build their documents with the same functions; a batch inserts them in bulk.
"""

from __future__ import annotations

import logging
from typing import Any

from mongoengine import Document, NotUniqueError
from pymongo.errors import BulkWriteError

from config import Settings
from daemon import handoff
from daemon.parse import ParsedEmail
from models import AttachmentRef, Ticket, TicketMessage, User, next_ticket_numbers, utcnow
from models.mailboxes import mailbox_of
from models.outbox import make_message_id
from models.tickets import sla_due

logger = logging.getLogger(__name__)


def get_or_create_requester(address: str, name: str) -> User:
    """The requester's user (role "user"), created on first contact."""
    user = User.by_email(address)
    if user is not None:
        return user
    try:
        return User(email=address, name=name[:200], role="user").save(force_insert=True)
    except NotUniqueError:  # created meanwhile by another ingester
        user = User.by_email(address)
        if user is None:  # pragma: no cover - the unique index said it exists
            raise
        return user


def requester_ids(emails: list[ParsedEmail]) -> dict[str, Any]:
    """address -> user id for the senders of `emails`, creating users on first contact (one query, one insert)."""
    names: dict[str, str] = {}
    for email in emails:
        names.setdefault(email.from_address, email.from_name)
    ids = {
        doc["email"]: doc["_id"] for doc in User._get_collection().find({"email": {"$in": list(names)}}, {"email": 1})
    }
    new = [User(email=address, name=name[:200], role="user") for address, name in names.items() if address not in ids]
    inserted, failed = insert_documents(User, new)
    ids.update({user.email: user.id for user in inserted})
    for user in failed:  # created meanwhile by another ingester
        known = User.by_email(user.email)
        if known is not None:
            ids[known.email] = known.id
    return ids


def insert_documents(document: type[Document], items: list[Any]) -> tuple[list[Any], list[Any]]:
    """Validate and insert documents in one unordered bulk insert; (inserted, rejected by a unique key)."""
    if not items:
        return [], []
    for item in items:
        item.validate()
    raw = [item.to_mongo().to_dict() for item in items]
    failed: set[int] = set()
    try:
        document._get_collection().insert_many(raw, ordered=False)
    except BulkWriteError as exc:
        failed = {error["index"] for error in exc.details.get("writeErrors", [])}
    inserted, rejected = [], []
    for index, (item, son) in enumerate(zip(items, raw, strict=True)):
        if index in failed:
            rejected.append(item)
        else:
            item.pk = son["_id"]
            inserted.append(item)
    return inserted, rejected


def participants_of(parsed: ParsedEmail, settings: Settings) -> list[str]:
    ours = {settings.support_address.lower(), settings.mail_default_sender.lower(), settings.imap_user.lower()}
    return [address for address in parsed.addresses() if address not in ours]


def store_attachments(parsed: ParsedEmail, settings: Settings) -> list[AttachmentRef]:
    """Attachments into GridFS; ones over the size limit are recorded without their bytes."""
    refs: list[AttachmentRef] = []
    for attachment in parsed.attachments:
        ref = AttachmentRef(
            filename=attachment.filename or "attachment",
            content_type=attachment.content_type,
            size=attachment.size,
            content_id=attachment.content_id or None,
            inline=attachment.inline,
        )
        if attachment.size > settings.attachment_max_bytes:
            ref.skipped_reason = f"over the size limit ({attachment.size} > {settings.attachment_max_bytes} bytes)"
        else:
            ref.file.put(attachment.data, content_type=attachment.content_type, filename=ref.filename)
        refs.append(ref)
    return refs


def build_ticket(parsed: ParsedEmail, settings: Settings, number: int, requester: Any) -> Ticket:
    """The unsaved ticket `number` opened by this email (`requester`: a User or its id)."""
    now = utcnow()
    ticket = Ticket(
        number=number,
        subject=parsed.subject or "(no subject)",
        requester=requester,
        requester_email=parsed.from_address,
        participants=participants_of(parsed, settings),
        source_message_id=parsed.message_id,
        created_at=now,
        updated_at=now,
        last_message_at=now,
        message_count=1,
        # chosen now (random, stored, never recomputed): the acknowledgement's id, without a later round trip
        ack_message_id=make_message_id(settings.support_address.rsplit("@", 1)[1]),
    )
    ticket.sla_due_at = sla_due(now, ticket.priority, settings.sla_hours)
    mailbox = mailbox_of(settings)
    if mailbox is not None:  # the address it came in on, and that mailbox's defaults until triage decides
        ticket.mailbox = mailbox.mailbox_address
        ticket.mailbox_category = mailbox.default_category or None
        ticket.mailbox_skills = list(mailbox.default_skills) or None
        ticket.category = mailbox.default_category or None
        ticket.required_skills = list(mailbox.default_skills)
    return ticket


def create_ticket(parsed: ParsedEmail, settings: Settings, number: int, requester: User) -> tuple[Ticket, bool]:
    """Insert ticket `number` with this email as its first thread entry; (ticket, False).

    When a crashed earlier attempt already created the ticket for this email: (that ticket, True),
    and `number` stays unused.
    """
    ticket = build_ticket(parsed, settings, number, requester)
    try:
        ticket.save(force_insert=True)
    except NotUniqueError:
        existing = Ticket.objects(source_message_id=parsed.message_id).first()
        if existing is None:
            raise
        logger.info("ticket #%s already existed for this message (retry after a crash)", existing.number)
        _insert_entry(existing, parsed, settings, kind="inbound", public=True, author=requester)
        return existing, True
    _insert_entry(ticket, parsed, settings, kind="inbound", public=True, author=requester)
    return ticket, False


def create_tickets(emails: list[ParsedEmail], settings: Settings) -> list[Ticket | None]:
    """New tickets for emails that open one, with bulk inserts; None where this email's ticket already exists
    (a retry after a crash: the caller finishes it with `create_ticket`)."""
    requesters = requester_ids(emails)
    numbers = next_ticket_numbers(len(emails))
    tickets = [
        build_ticket(email, settings, number, requesters[email.from_address])
        for email, number in zip(emails, numbers, strict=True)
    ]
    for ticket in tickets:  # inserted claimed for this daemon's triage job, when it takes them (daemon/handoff.py)
        claim = handoff.new_claim(ticket.created_at)
        if claim is None:
            break
        ticket.triage = claim
    inserted, _ = insert_documents(Ticket, tickets)
    created = {id(ticket) for ticket in inserted}
    results = [ticket if id(ticket) in created else None for ticket in tickets]
    entries = [  # the author by id: no dereference query per entry
        build_entry(ticket, email, settings, kind="inbound", public=True, author=requesters[email.from_address])
        for email, ticket in zip(emails, results, strict=True)
        if ticket is not None
    ]
    insert_documents(TicketMessage, entries)  # an entry already there (a retry) is as good
    handoff.put(inserted)  # only now: triage reads the first message
    return results


def append_message(
    ticket: Ticket,
    parsed: ParsedEmail,
    settings: Settings,
    *,
    kind: str = "inbound",
    public: bool = True,
    author: User | None = None,
) -> bool:
    """Add the email to the ticket's thread and bump the ticket; False when it was already there. (A customer's
    reply reopens its ticket in daemon/replies.py.)"""
    if not _insert_entry(ticket, parsed, settings, kind=kind, public=public, author=author):
        # retry after a crash between the insert and the bump: recount instead of bumping twice
        Ticket.objects(id=ticket.id).update_one(set__message_count=TicketMessage.objects(ticket=ticket).count())
        return False
    _bump(ticket, parsed, settings, count_as_customer=kind == "inbound")
    return True


def build_entry(
    ticket: Ticket, parsed: ParsedEmail, settings: Settings, *, kind: str, public: bool, author: Any
) -> TicketMessage:
    """The unsaved thread entry for this email (its attachments are stored in GridFS now)."""
    entry = TicketMessage(
        ticket=ticket,
        ticket_number=ticket.number,
        kind=kind,
        public=public,
        message_id=parsed.message_id,
        in_reply_to=parsed.in_reply_to,
        references=parsed.references[-50:],
        author=author,
        from_address=parsed.from_address,
        from_name=parsed.from_name,
        to=parsed.to,
        cc=parsed.cc,
        subject=parsed.subject,
        sent_at=parsed.date,
        text=parsed.text,
        new_text=parsed.new_text,
        html=parsed.html,
        auto_submitted=parsed.auto_submitted,
    )
    entry.attachments = store_attachments(parsed, settings)
    return entry


def _insert_entry(
    ticket: Ticket, parsed: ParsedEmail, settings: Settings, *, kind: str, public: bool, author: User | None
) -> bool:
    entry = build_entry(ticket, parsed, settings, kind=kind, public=public, author=author)
    try:
        entry.save(force_insert=True)
    except NotUniqueError:
        return False
    return True


def _bump(ticket: Ticket, parsed: ParsedEmail, settings: Settings, *, count_as_customer: bool) -> None:
    now = utcnow()
    update: dict[str, object] = {"inc__message_count": 1, "set__updated_at": now}
    if count_as_customer:
        update["set__last_message_at"] = now
        new_participants = [a for a in participants_of(parsed, settings) if a not in (ticket.participants or [])]
        if new_participants:
            update["add_to_set__participants"] = new_participants
    Ticket.objects(id=ticket.id).update_one(**update)


def ticket_by_number(number: int | None) -> Ticket | None:
    """By the unique `number` index."""
    return Ticket.objects(number=number).first() if number else None


def ticket_by_id(ticket_id: object) -> Ticket | None:
    return Ticket.objects(id=ticket_id).first() if ticket_id else None
