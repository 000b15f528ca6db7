"""The work queue: saved filters with capped counts, ordered by SLA due then priority.

DocumentDB (the embedded server) sorts every matching row for an ORDER BY, so "the 25 tickets due soonest" is read
from a window `sla_due_at < anchor + width` of the (status, sla_due_at) index, the window widening until the page is
full (the rows due soonest lie just above the oldest deadlines). The anchor is the creation time of the oldest ticket
(a deadline never precedes its ticket); rows below it would still be read, since the window has no lower bound.
A filtered list's count is capped the same way ("99+" once a window holds 100 of its tickets). The saved filters'
counts are capped counts read through the index that fits each filter (hinted: DocumentDB's planner otherwise
intersects several indexes and reads every open ticket); the page loads them from `/queue/counts` after it is shown.
On MongoDB the same queries read the index in order; the pages are the same.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from models import Ticket, User
from models.tickets import OPEN_STATUSES, PRIORITIES, highest_ticket_number
from webadmin.tickets import only_fields, search_query, visibility, with_assignees

VIEWS = ("all", "mine", "unassigned", "overdue", "escalated", "waiting")
VIEW_LABELS = {
    "all": "All open",
    "mine": "Mine",
    "unassigned": "Unassigned",
    "overdue": "Overdue",
    "escalated": "Escalated",
    "waiting": "Waiting on customer",
}
ANY_STATUS = "any"
# the index each saved filter's count reads (measured at 100,000 tickets: 5-16 ms each, 45-75 ms unhinted; "waiting"
# 3.4 against 17.6 ms); "mine" is left to the planner, which picks (assignee, status) for it
VIEW_INDEXES = {
    "all": "status_1_sla_due_at_1",
    "waiting": "status_1_sla_due_at_1",
    "unassigned": "status_1_sla_due_at_1",
    "overdue": "sla_breached_status_true",
    "escalated": "escalated_at_true",
}
COUNT_CAP = 100  # counts stop here and read "99+"
FIRST_WIDTH = dt.timedelta(days=1)
WIDEN = 8
PRIORITY_RANK = {name: rank for rank, name in enumerate(reversed(PRIORITIES))}  # urgent 0 ... low 3


@dataclass(frozen=True)
class QueueFilters:
    view: str = "all"
    status: str = ""  # one status, ANY_STATUS (closed ones too), or "" for every open one
    priority: str = ""
    category: str = ""
    search: str = ""


@dataclass(frozen=True)
class QueuePage:
    items: list[Ticket]
    page: int
    per_page: int
    has_next: bool


def capped_label(count: int) -> str:
    return f"{COUNT_CAP - 1}+" if count >= COUNT_CAP else str(count)


def view_clause(user: User, view: str, now: dt.datetime) -> dict[str, Any]:
    """The saved filter `view` as a query on open tickets."""
    clause: dict[str, Any] = {"status": {"$in": list(OPEN_STATUSES)}}
    if view == "mine":
        clause["assignee"] = user.id
    elif view == "unassigned":
        clause["assignee"] = None
    elif view == "overdue":  # past the deadline, no response yet: the SLA job marks these within a minute
        clause.update({"sla_breached": True, "first_response_at": None})
    elif view == "escalated":
        clause["escalated"] = True
    elif view == "waiting":  # pending: a reply sets it, the customer's next email reopens it (daemon/replies.py)
        clause["status"] = "pending"
    return clause


def queue_query(user: User, filters: QueueFilters, now: dt.datetime) -> dict[str, Any]:
    """The raw query for `filters` over what `user` may see."""
    clauses = [view_clause(user, filters.view, now)]
    if filters.status and filters.view != "waiting":  # a chosen status replaces "every open status"
        clauses[0].pop("status")
        if filters.status != ANY_STATUS:
            clauses.append({"status": filters.status})
    if filters.priority:
        clauses.append({"priority": filters.priority})
    if filters.category:
        clauses.append({"category": filters.category})
    if filters.search.strip():
        clauses.append(search_query(filters.search))
    clauses.append(_visible_in_view(user, filters.view))
    query: dict[str, Any] = {}
    for clause in filter(None, clauses):  # one document; repeated keys go to $and ($or and $text stay at the top level)
        for key, value in clause.items():
            if key in query:
                query.setdefault("$and", []).append({key: value})
            else:
                query[key] = value
    return query


def _visible_in_view(user: User, view: str) -> dict[str, Any]:
    """What `user` may see, simplified where the view implies it (a simpler query plans better)."""
    if view == "mine":
        return {}  # one's own tickets are always visible
    if view == "unassigned" and user.role == "moderator" and user.skills:
        return {"required_skills": {"$in": list(user.skills)}}
    return visibility(user)


def sla_anchor() -> dt.datetime | None:
    """The creation time of the lowest-numbered ticket, read through windows of the unique `number` index."""
    highest, width = highest_ticket_number(), 200
    while True:
        first = Ticket.objects(number__lte=width).order_by("number").only("created_at").first()
        if first is not None:
            return first.created_at or dt.datetime(1970, 1, 1)
        if width > highest:
            return None
        width *= WIDEN


@dataclass(frozen=True)
class Windows:
    """Upper ends of ever wider windows of deadlines, from `anchor` up to `ceiling` (after which: no bound)."""

    anchor: dt.datetime | None
    ceiling: dt.datetime

    @classmethod
    def for_now(cls, now: dt.datetime, sla_hours: dict[str, float]) -> Windows:
        # later than any deadline set from now on: a window reaching it holds every dated ticket
        ceiling = now + dt.timedelta(hours=max(sla_hours.values(), default=24.0) + 24)
        return cls(sla_anchor(), ceiling)

    def bounds(self) -> Iterator[dt.datetime | None]:
        if self.anchor is None:
            return
        width = FIRST_WIDTH
        while self.anchor + width < self.ceiling:
            yield self.anchor + width
            width *= WIDEN
        yield None


def _within(query: dict[str, Any], upper: dt.datetime | None) -> dict[str, Any]:
    if upper is None:
        return query
    bounded = dict(query)
    if "sla_due_at" in bounded:
        bounded["$and"] = [*bounded.get("$and", []), {"sla_due_at": {"$lt": upper}}]
    else:
        bounded["sla_due_at"] = {"$lt": upper}
    return bounded


def _narrow(query: dict[str, Any]) -> bool:
    """A search, one ticket or the breached ones: an index picks few rows, so they are sorted as they are."""
    return "$text" in query or "number" in query or "sla_breached" in query


# what a row of the queue shows (queue.html, is_overdue, customer_replied): a ticket's notes, summary and
# similar tickets are most of its document, and not read for a list
ROW_FIELDS = (
    "number",
    "subject",
    "status",
    "priority",
    "requester_email",
    "assignee",
    "escalated",
    "sla_due_at",
    "first_response_at",
    "last_reply_at",
    "last_message_at",
    "updated_at",
)


def list_queue(
    user: User,
    filters: QueueFilters,
    now: dt.datetime,
    windows: Windows,
    page: int = 1,
    per_page: int = 25,
) -> QueuePage:
    """One page of the queue, soonest deadline first, then priority (urgent first), then number (no count: the
    page has a next one when a row past it exists)."""
    query = queue_query(user, filters, now)
    skip = (page - 1) * per_page
    ordered = ("sla_due_at", "number")
    rows: list[Ticket] = []
    if _narrow(query):
        found = only_fields(Ticket.objects(__raw__=query), query, ROW_FIELDS)
        rows = list(found.order_by(*ordered).skip(skip).limit(per_page + 1))
    else:
        for upper in windows.bounds():
            found = (
                Ticket.objects(__raw__=_within(query, upper))
                .only(*ROW_FIELDS)
                .order_by(*ordered)
                .skip(skip)
                .limit(per_page + 1)
            )
            rows = list(found)
            if len(rows) > per_page:
                break
    items = by_deadline_then_priority(rows[:per_page])
    with_assignees(items)  # one `$in` for the page
    return QueuePage(items, page, per_page, len(rows) > per_page)


def by_deadline_then_priority(tickets: list[Ticket]) -> list[Ticket]:
    """Tickets due at the same moment: the more urgent first (the database sorted by deadline, then number)."""
    return sorted(tickets, key=lambda t: (t.sla_due_at is not None, t.sla_due_at, PRIORITY_RANK.get(t.priority, 9)))


def capped_count(query: dict[str, Any], windows: Windows) -> int:
    """How many tickets match, counted up to COUNT_CAP through the same windows as the list."""
    if _narrow(query):
        return Ticket.objects(__raw__=query).limit(COUNT_CAP).count(with_limit_and_skip=True)
    count = 0
    for upper in windows.bounds():
        count = Ticket.objects(__raw__=_within(query, upper)).limit(COUNT_CAP).count(with_limit_and_skip=True)
        if count >= COUNT_CAP:
            break
    return count


def view_count(user: User, view: str, now: dt.datetime) -> int:
    """The capped count of saved filter `view` for `user`, read through the index that fits it."""
    query = queue_query(user, QueueFilters(view=view), now)
    hint = _count_hint(view, query)
    options: dict[str, Any] = {"limit": COUNT_CAP} | ({"hint": hint} if hint else {})
    return Ticket._get_collection().count_documents(query, **options)


def _count_hint(view: str, query: dict[str, Any]) -> str | None:
    """The index a saved filter's count reads: a moderator's "unassigned" names their skills, and the index of
    unassigned tickets by skill reads only those (1,000,000 tickets: 22 ms against 196 ms through open tickets by
    deadline); without skills (an admin), open tickets by deadline."""
    if view == "unassigned" and "required_skills" in query:
        return "skills_unassigned"
    return VIEW_INDEXES.get(view)


def view_counts(user: User, now: dt.datetime) -> dict[str, int]:
    """The capped count of each saved filter for `user`: independent queries, sent side by side (the database
    answers them on its own connections; one after another they took the sum of their times)."""
    counts = _counting_pool().map(lambda view: view_count(user, view, now), VIEWS)
    return dict(zip(VIEWS, counts, strict=True))


@functools.cache
def _counting_pool() -> ThreadPoolExecutor:
    """Threads of this process for `view_counts`, started at its first use (after gunicorn forked the worker)."""
    return ThreadPoolExecutor(max_workers=3, thread_name_prefix="queue-count")


def customer_replied(ticket: Ticket) -> bool:
    """The customer wrote after our last reply (`last_message_at` moves on every customer email)."""
    ours = ticket.last_reply_at or ticket.first_response_at
    return ours is not None and ticket.last_message_at is not None and ticket.last_message_at > ours


def is_overdue(ticket: Ticket, now: dt.datetime) -> bool:
    """Open, past its deadline and not answered yet."""
    due = ticket.sla_due_at
    return ticket.is_open and ticket.first_response_at is None and due is not None and due < now


def relative(when: dt.datetime | None, now: dt.datetime) -> str:
    """ "in 3 h", "2 d ago": short enough for a table cell."""
    if when is None:
        return "—"
    seconds = (when - now).total_seconds()
    minutes = int(abs(seconds) // 60)
    amount = f"{minutes} min" if minutes < 60 else f"{minutes // 60} h" if minutes < 48 * 60 else f"{minutes // 1440} d"
    return f"in {amount}" if seconds > 0 else f"{amount} ago"
