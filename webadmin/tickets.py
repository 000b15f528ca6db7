"""Who may see which ticket, and the role-scoped ticket queries shared by pages and the API.

Every list is one query on the `tickets` collection served by an index declared in `models.tickets`
(see `INDEXES_NEEDED` below for the ones the web app relies on), newest ticket (highest number) first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import Forbidden, NotFound

from models import Ticket, TicketMessage, User
from models.tickets import OPEN_STATUSES, highest_ticket_number
from models.users import normalise_email
from webadmin.windows import first_window, newest_first

if TYPE_CHECKING:
    from mongoengine.queryset import QuerySet

MAX_PER_PAGE = 100
COUNT_CAP = 200  # a filtered list counts its rows up to this many ("200+"); an exact count reads every row
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


# A window's index, most selective first: DocumentDB's planner tends to AND a second single-field index
# (e.g. `priority`) into a bitmap that reads every row of that value; the compound index reads the window only.
WINDOW_INDEXES = ("requester_email", "assignee", "status", "required_skills")


@dataclass(frozen=True)
class TicketFilters:
    status: str = ""  # a status, "active" (every open status) or "" for any
    priority: str = ""
    category: str = ""
    search: str = ""  # words of the subject/summary, a ticket number, or a requester's address
    scope: str = ""  # "mine", "unassigned" or "" (everything the user may see)


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]  # the tickets' documents as stored (the fields asked for), not hydrated
    people: dict[Any, User]  # the page's assignees by id
    page: int
    per_page: int
    total: int | None  # None when not counted; exact when `total_exact`, else a lower bound (COUNT_CAP)
    total_exact: bool = True
    has_next: bool = False

    @property
    def pages(self) -> int:
        """Pages known to exist: all of them when the total is exact, else at least one past this one."""
        if self.total is None or not self.total_exact:
            return self.page + 1 if self.has_next else self.page
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
    if seen and not (filters.scope == "mine" and user.is_staff):  # staff see every ticket assigned to them
        clauses.append(seen)
    query: dict[str, Any] = {}
    for clause in clauses:  # flatten into one document ($or and $text at the top level, as MongoDB requires)
        for key, value in clause.items():
            if key in query:
                query.setdefault("$and", []).append({key: value})
            else:
                query[key] = value
    return query


def list_tickets(
    user: User,
    filters: TicketFilters,
    page: int = 1,
    per_page: int = 25,
    *,
    count: bool = True,
    fields: tuple[str, ...] = (),
) -> Page:
    """The tickets `user` may see that match `filters`, newest first, one page of them, as stored documents
    (building mongoengine objects cost ~0.4 ms a ticket, more than reading them), with their assignees.

    One row past the page tells whether another page exists. `count`: also count the matches, up to
    COUNT_CAP (free when the page is the last one, or from the ticket counter when nothing is filtered)."""
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    page = max(1, page)
    query = ticket_query(user, filters)
    found = only_fields(Ticket.objects(__raw__=query), query, fields).as_pymongo()
    skip = (page - 1) * per_page
    if "number" in query:  # one ticket at most
        rows = list(found.limit(per_page + 1))
    elif "$text" in query:  # the text index picks the rows (a number window would not narrow its scan)
        rows = list(found.order_by(*NEWEST_FIRST).skip(skip).limit(per_page + 1))
    else:
        newest, width = highest_ticket_number(), first_window(skip, per_page)
        rows = newest_first(found.hint(window_hint(query)), "number", newest, skip, per_page + 1, width, oldest=0)
    items, has_next = rows[:per_page], len(rows) > per_page
    people = people_by_id({row.get("assignee") for row in items})
    total: int | None = skip + len(items)
    exact = bool(items) or page == 1
    if has_next or not exact:
        total, exact = count_tickets(query) if count else (None, False)
    return Page(
        items=items, people=people, page=page, per_page=per_page, total=total, total_exact=exact, has_next=has_next
    )


def only_fields(found: QuerySet, query: dict[str, Any], fields: tuple[str, ...]) -> QuerySet:
    """`found` reading only `fields`, except for a word search: DocumentDB projects every `$text` match before it
    sorts them (14 of 36 ms for a word in 7,500 of 100,000 tickets; docs/db-compat.md), so searches read whole
    documents."""
    return found if not fields or "$text" in query else found.only(*fields)


def window_hint(query: dict[str, Any]) -> list[tuple[str, int]]:
    """The index that reads a newest-first window of `query`: `(field, -number)` for its most selective
    equality (or `$in`) on an indexed field, else the unique `number` index."""
    for field in WINDOW_INDEXES:
        value = query.get(field, ...)
        if value is not ... and (not isinstance(value, dict) or set(value) == {"$in"}):
            return [(field, 1), ("number", -1)]
    return [("number", 1)]


def count_tickets(query: dict[str, Any], cap: int = COUNT_CAP) -> tuple[int, bool]:
    """(count, exact?) of the tickets matching `query`: from the ticket counter when unfiltered (numbers are
    handed out once and tickets are never deleted), else counted up to `cap` rows."""
    if not query:
        return highest_ticket_number(), True
    counted = Ticket._get_collection().count_documents(query, limit=cap)
    return counted, counted < cap


def people_by_id(ids: set[Any]) -> dict[Any, User]:
    """Staff by id, in one `$in`, with only what a list shows of them."""
    ids = ids - {None}
    if not ids:
        return {}
    return {u.id: u for u in User.objects(id__in=list(ids)).only("email", "name", "role", "active")}


def with_assignees(tickets: list[Ticket]) -> list[Ticket]:
    """Load the tickets' assignees in one `$in` (only what a list shows), instead of one query per row or
    mongoengine's select_related, which also loads every requester."""
    people = people_by_id({_reference_id(t._data.get("assignee")) for t in tickets})
    if not people:
        return tickets
    for ticket in tickets:
        key = _reference_id(ticket._data.get("assignee"))
        if key in people:
            ticket._data["assignee"] = people[key]
    return tickets


def _reference_id(value: Any) -> Any:
    return getattr(value, "id", value)


def thread_of(ticket: Ticket, *, public_only: bool) -> list[TicketMessage]:
    """The ticket's messages in order (index `ticket, created_at`); `public_only` keeps just the emails
    the requester saw."""
    found = TicketMessage.objects(ticket=ticket.id)
    if public_only:
        found = found.filter(kind__in=("inbound", "outbound"), public=True)
    messages = list(found.order_by("created_at", "id"))
    ids = {_reference_id(m._data.get("author")) for m in messages} - {None}
    if ids:  # the authors of staff replies and notes in one `$in`, not one query per message
        people = {u.id: u for u in User.objects(id__in=list(ids)).only("email", "name", "role")}
        for message in messages:
            key = _reference_id(message._data.get("author"))
            if key in people:
                message._data["author"] = people[key]
    return messages
