"""Who may see which ticket, and the role-scoped ticket queries shared by pages and the API.

Every list is one query on the `tickets` collection served by an index declared in `models.tickets`
(see `INDEXES_NEEDED` below for the ones the web app relies on), newest ticket (highest number) first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from werkzeug.exceptions import Forbidden, NotFound

from models import Ticket, TicketMessage, User
from models.tickets import OPEN_STATUSES, highest_ticket_number
from models.users import normalise_email
from webadmin.windows import first_window, newest_first

MAX_PER_PAGE = 100
MAX_TICKET_NUMBER = 2**53  # larger numbers cannot exist; BSON integers overflow at 2**63
NEWEST_FIRST = ("-number",)  # numbers are allocated in arrival order; unique index on `number`
_NUMBER = re.compile(r"^#?\s*(\d{1,16})$")

# The compound indexes these queries need on `tickets` (declared in models/tickets.py's meta):
INDEXES_NEEDED = (
    ("status", "-number"),  # the open queue, newest first; status filters
    ("assignee", "-number"),  # "mine" and a moderator's own tickets
    ("required_skills", "-number"),  # unassigned tickets a moderator's skills fit
    ("requester_email", "-number"),  # a requester's own tickets; search by address
    ("$subject", "$summary"),  # the text index behind `q`
)


@dataclass(frozen=True)
class TicketFilters:
    status: str = ""  # a status, "active" (every open status) or "" for any
    priority: str = ""
    category: str = ""
    search: str = ""  # words of the subject/summary, a ticket number, or a requester's address
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


def visibility(user: User) -> dict[str, Any]:
    """Who sees what, as a query: admins everything; moderators their own tickets and unassigned ones
    needing one of their skills; requesters their own requests."""
    if user.role == "admin":
        return {}
    if user.role == "moderator":
        mine: dict[str, Any] = {"assignee": user.id}
        if not user.skills:
            return mine
        return {"$or": [mine, {"assignee": None, "required_skills": {"$in": list(user.skills)}}]}
    return {"requester_email": normalise_email(user.email)}


def search_query(text: str) -> dict[str, Any]:
    """`q` as a query: a ticket number (`42`, `#42`), a requester's address, or words ($text index)."""
    text = text.strip()
    number = _NUMBER.match(text)
    if number:
        value = int(number.group(1))
        return {"number": value if value <= MAX_TICKET_NUMBER else -1}
    if "@" in text and " " not in text:
        return {"requester_email": normalise_email(text)}
    return {"$text": {"$search": text}}


def ticket_query(user: User, filters: TicketFilters) -> dict[str, Any]:
    """The raw query for the tickets `user` may see that match `filters`."""
    clauses: list[dict[str, Any]] = []
    if filters.status == "active":
        clauses.append({"status": {"$in": list(OPEN_STATUSES)}})
    elif filters.status:
        clauses.append({"status": filters.status})
    if filters.priority:
        clauses.append({"priority": filters.priority})
    if filters.category:
        clauses.append({"category": filters.category})
    if filters.scope == "mine":
        clauses.append({"assignee": user.id})
    elif filters.scope == "unassigned":
        clauses.append({"assignee": None})
    if filters.search.strip():
        clauses.append(search_query(filters.search))
    seen = visibility(user)
    if seen:
        clauses.append(seen)
    query: dict[str, Any] = {}
    for clause in clauses:  # flatten into one document ($or and $text at the top level, as MongoDB requires)
        for key, value in clause.items():
            if key in query:
                query.setdefault("$and", []).append({key: value})
            else:
                query[key] = value
    return query


def list_tickets(user: User, filters: TicketFilters, page: int = 1, per_page: int = 25) -> Page:
    """The tickets `user` may see that match `filters`, newest first, one page of them."""
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    page = max(1, page)
    query = ticket_query(user, filters)
    found = Ticket.objects(__raw__=query)
    total = found.count() if query else Ticket._get_collection().estimated_document_count()
    skip = (page - 1) * per_page
    if "number" in query or "$text" in query:  # one ticket, or a text search: the index picks the rows
        items = list(found.order_by(*NEWEST_FIRST).skip(skip).limit(per_page).select_related(1))
    else:
        newest, width = highest_ticket_number(), first_window(skip, per_page)
        items = newest_first(found, "number", newest, skip, per_page, width, oldest=0, related=True)
    return Page(items=items, page=page, per_page=per_page, total=total)


def thread_of(ticket: Ticket, *, public_only: bool) -> list[TicketMessage]:
    """The ticket's messages in order (index `ticket, created_at`); `public_only` keeps just the emails
    the requester saw."""
    found = TicketMessage.objects(ticket=ticket.id)
    if public_only:
        found = found.filter(kind__in=("inbound", "outbound"), public=True)
    return list(found.order_by("created_at", "id"))
