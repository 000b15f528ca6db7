"""Who may see which ticket, and the role-scoped ticket queries shared by pages and the API."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mongoengine import Q
from mongoengine.queryset import QuerySet
from werkzeug.exceptions import Forbidden, NotFound

from models import Ticket, TicketMessage, User
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
    items: list[Ticket]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def visibility(user: User) -> Q:
    """Admins see everything; moderators their own tickets and unassigned ones needing their skills;
    requesters their own tickets as requester."""
    if user.role == "admin":
        return Q()
    if user.role == "moderator":
        mine = Q(assignee=user.id)
        if user.skills:
            return mine | Q(assignee=None, required_skills__in=list(user.skills))
        return mine
    return Q(requester_email=user.email)


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


def get_ticket_for(user: User, number: int) -> Ticket:
    """The ticket, or NotFound when it does not exist, Forbidden when `user` may not see it."""
    ticket = Ticket.objects(number=number).first() if 0 < number <= MAX_TICKET_NUMBER else None
    if ticket is None:
        raise NotFound(f"Ticket #{number} does not exist.")
    if not can_view(user, ticket):
        raise Forbidden(f"You may not see ticket #{number}.")
    return ticket


def _filtered(user: User, filters: TicketFilters) -> QuerySet:
    query = Ticket.objects(visibility(user))
    if filters.status == "active":
        query = query.filter(status__in=list(OPEN_STATUSES))
    elif filters.status:
        query = query.filter(status=filters.status)
    if filters.priority:
        query = query.filter(priority=filters.priority)
    if filters.category:
        query = query.filter(category=filters.category)
    if filters.scope == "mine":
        query = query.filter(assignee=user.id)
    elif filters.scope == "unassigned":
        query = query.filter(assignee=None)
    if filters.search:
        pattern = re.compile(re.escape(filters.search.strip()), re.IGNORECASE)
        query = query.filter(Q(subject=pattern) | Q(requester_email=pattern))
    return query


def list_tickets(user: User, filters: TicketFilters, page: int = 1, per_page: int = 25) -> Page:
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    page = max(1, page)
    query = _filtered(user, filters).order_by("-created_at")
    total = query.count()
    items = list(query.skip((page - 1) * per_page).limit(per_page))
    return Page(items=items, page=page, per_page=per_page, total=total)


def thread_of(ticket: Ticket, *, public_only: bool) -> list[TicketMessage]:
    """The ticket's messages in order; `public_only` keeps just the emails the requester saw."""
    query = TicketMessage.objects(ticket_number=ticket.number)
    if public_only:
        query = query.filter(kind__in=["inbound", "outbound"], public=True)
    return list(query.order_by("created_at"))
