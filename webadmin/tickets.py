"""Who may see which ticket, and the role-scoped ticket queries shared by pages and the API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from flask import current_app
from werkzeug.exceptions import Forbidden, NotFound

from models import Ticket, TicketMessage, User
from models.ticket_index import TicketIndex, TicketRow
from models.tickets import OPEN_STATUSES

MAX_PER_PAGE = 100
MAX_TICKET_NUMBER = 2**53  # larger numbers cannot exist; BSON integers overflow at 2**63


@dataclass(frozen=True)
class TicketFilters:
    status: str = ""  # a status, "active" (every open status) or "" for any
    priority: str = ""
    category: str = ""
    search: str = ""  # subject or requester address, case-insensitive substring
    scope: str = ""  # "mine", "unassigned" or "" (everything the user may see)


@dataclass(frozen=True)
class Page:
    items: list[TicketRow]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def can_view(user: User, ticket: Ticket) -> bool:
    if user.role == "admin":
        return True
    if user.role == "moderator":
        assignee_id = ticket._data.get("assignee")
        assignee_id = getattr(assignee_id, "id", assignee_id)
        if assignee_id is not None:
            return assignee_id == user.id
        return bool(set(ticket.required_skills or []) & set(user.skills or []))
    return ticket.requester_email.lower() == user.email.lower()


def ticket_index() -> TicketIndex:
    """This web process's in-memory ticket list (see webadmin/ticket_index.py)."""
    return current_app.extensions["ticket_index"]


def get_ticket_for(user: User, number: int) -> Ticket:
    """The ticket, or NotFound when it does not exist, Forbidden when `user` may not see it."""
    row = ticket_index().find(number) if 0 < number <= MAX_TICKET_NUMBER else None
    ticket = Ticket.objects(id=row.id).first() if row is not None else None
    if ticket is None:
        raise NotFound(f"Ticket #{number} does not exist.")
    if not can_view(user, ticket):
        raise Forbidden(f"You may not see ticket #{number}.")
    return ticket


def _visible_to(user: User) -> Callable[[TicketRow], bool]:
    """Who sees what (admins everything; moderators their own tickets and unassigned ones needing
    their skills; requesters their own requests), for the in-memory rows."""
    if user.role == "admin":
        return lambda row: True
    if user.role == "moderator":
        me, skills = user.id, frozenset(user.skills or ())
        return lambda row: (
            row.assignee_id == me or (row.assignee_id is None and not row.required_skills.isdisjoint(skills))
        )
    email = user.email.lower()
    return lambda row: row.requester_email.lower() == email


def _matches(user: User, filters: TicketFilters) -> Callable[[TicketRow], bool]:
    visible, me = _visible_to(user), user.id
    statuses = frozenset(OPEN_STATUSES) if filters.status == "active" else frozenset((filters.status,))
    priority, category, scope = filters.priority, filters.category, filters.scope
    needle = filters.search.strip().lower()

    def matches(row: TicketRow) -> bool:
        return (
            (not filters.status or row.status in statuses)
            and (not priority or row.priority == priority)
            and (not category or row.category == category)
            and (scope != "mine" or row.assignee_id == me)
            and (scope != "unassigned" or row.assignee_id is None)
            and (not needle or needle in row.search_text)
            and visible(row)
        )

    return matches


def list_tickets(user: User, filters: TicketFilters, page: int = 1, per_page: int = 25) -> Page:
    """The tickets `user` may see that match `filters`, newest first, one page of them."""
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    page = max(1, page)
    matches = _matches(user, filters)
    matching = [row for row in ticket_index().rows() if matches(row)]
    chosen = matching[(page - 1) * per_page : page * per_page]
    index = ticket_index()
    items = [replace(row, assignee=index.user(row.assignee_id)) if row.assignee_id else row for row in chosen]
    return Page(items=items, page=page, per_page=per_page, total=len(matching))


def thread_of(ticket: Ticket, *, public_only: bool) -> list[TicketMessage]:
    """The ticket's messages in order; `public_only` keeps just the emails the requester saw."""
    collection = TicketMessage._get_collection()
    messages = []
    for message_id in ticket_index().message_ids(ticket.id):
        doc = collection.find_one({"_id": message_id})
        if doc is None:
            continue
        message = TicketMessage._from_son(doc)
        if public_only and not (message.kind in ("inbound", "outbound") and message.public):
            continue
        messages.append(message)
    return messages
