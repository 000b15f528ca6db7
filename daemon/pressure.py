"""Intake first: while a mailbox loop of this process works through a backlog (a burst of mail), other jobs give way.

Every email is then stored and acknowledged before anything else: the triage job takes one batch per pass instead
of looping (it catches up as soon as the backlog is gone), and the outbox job sends only what customers wait for
(acknowledgements are sent by the mailbox loop itself; agents' replies still go out) while staff notifications
wait for the backlog to clear.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_loops_with_backlog = 0


@contextmanager
def intake_backlog(active: bool = True) -> Iterator[None]:
    """Mark this process's intake busy for the duration (a no-op when not `active`)."""
    global _loops_with_backlog
    if not active:
        yield
        return
    with _lock:
        _loops_with_backlog += 1
    try:
        yield
    finally:
        with _lock:
            _loops_with_backlog -= 1


def intake_busy() -> bool:
    """A mailbox loop of this process is working through a backlog."""
    return _loops_with_backlog > 0
