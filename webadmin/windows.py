"""Newest-first pages read from a window of an index, for servers that sort in memory.

DocumentDB (the embedded server) never reads an index in order for a sort: "newest 25 tickets" sorts every
matching row (250 ms at 100,000 tickets, unfiltered). The rows of the first pages all lie just below the
newest value of the sort key, so the page is read from a window `key > newest - width` (an index range scan),
and the window widens until the page is full or reaches the oldest value. MongoDB answers the same queries
from the index directly; the results are the same either way.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from mongoengine.queryset import QuerySet

WIDEN = 8  # each retry reads a window this many times wider


def newest_first(
    queryset: QuerySet,
    field: str,
    newest: Any,
    skip: int,
    limit: int,
    width: Any,
    *,
    oldest: Any,
    related: bool = False,
) -> list[Any]:
    """Documents `skip`..`skip + limit` of `queryset` by `field` descending, read window by window.

    `newest`: the largest value `field` can have; `width`: the first window's width (a number, or a timedelta
    for dates), grown until the page is full or the window's lower end passes `oldest`: to the width the
    matches seen so far say is needed (with a margin), or by WIDEN when the window held none.
    `related`: load the page's references (e.g. assignees) in one query each.
    """
    while True:
        lower = newest - width
        window = queryset.filter(**{f"{field}__gt": lower}).order_by(f"-{field}").skip(skip).limit(limit)
        page = list(window.select_related(1) if related else window)
        if len(page) >= limit or lower < oldest:
            return page
        width = width * next_factor(skip + len(page) if page else 0, skip + limit)


def next_factor(matched: int, wanted: int) -> int:
    """How much wider the next window should be: enough for `wanted` rows at the density of the `matched` ones
    the last window held (1.5 times, as matches are not spread evenly), at least 2 and at most 64 times."""
    if not matched:
        return WIDEN
    return max(2, min(64, math.ceil(1.5 * wanted / matched)))


def first_window(skip: int, limit: int) -> int:
    """The first window's width in ticket numbers: a few pages' worth."""
    return max(200, 4 * (skip + limit))


EPOCH = dt.datetime(1970, 1, 1)
