"""Every support mailbox is read at once: the settings' own (the scheduler's "mailbox" job) and each enabled
`SupportMailbox` in its own loop thread.

`MailboxSupervisor.sync` (the scheduler's "mailboxes" job) re-reads the enabled mailboxes and keeps one loop
thread per mailbox (daemon/poller.py `run_mailbox_loop`: its own cursor, lease, backoff and recorded failure):
a mailbox added in the panel starts within one interval, a disabled or deleted one stops, an edited one
restarts with its new settings. One broken mailbox never stops the others: each loop catches its own errors.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from config import Settings
from daemon.mailbox_settings import readable_mailboxes
from daemon.poller import run_mailbox_loop

logger = logging.getLogger(__name__)
REFRESH_SECONDS = 15.0  # how often the set of mailboxes is re-read
JOIN_SECONDS = 10.0


@dataclass
class _Loop:
    settings: Settings
    stop: threading.Event
    thread: threading.Thread


class MailboxSupervisor:
    """One `run_mailbox_loop` thread per enabled `SupportMailbox` (the settings' own runs as the "mailbox" job)."""

    def __init__(self, base: Settings, stop: threading.Event) -> None:
        self.base, self.stop = base, stop
        self.loops: dict[str, _Loop] = {}
        self._lock = threading.Lock()

    def sync(self) -> None:
        """Start loops for new mailboxes, stop them for disabled or deleted ones, restart edited ones."""
        with self._lock:
            if self.stop.is_set():
                return
            wanted = dict(readable_mailboxes(self.base)[1:])
            for address, loop in list(self.loops.items()):
                if wanted.get(address) is not loop.settings or not loop.thread.is_alive():
                    logger.info("mailbox %s changed or was disabled: stopping its loop", address)
                    loop.stop.set()
                    del self.loops[address]
            for address, settings in wanted.items():
                if address not in self.loops:
                    self.loops[address] = self._start(address, settings)

    def _start(self, address: str, settings: Settings) -> _Loop:
        stop = threading.Event()
        thread = threading.Thread(
            target=self._run, args=[address, settings, stop], name=f"mailbox:{address}", daemon=True
        )
        thread.start()
        logger.info("reading mailbox %s", address)
        return _Loop(settings, stop, thread)

    def _run(self, address: str, settings: Settings, stop: threading.Event) -> None:
        try:
            run_mailbox_loop(settings, stop)
        except Exception:  # the loop catches its own errors; this is a bug, and the next sync restarts it
            logger.exception("the loop of mailbox %s ended", address)

    def stop_all(self, timeout: float = JOIN_SECONDS) -> None:
        """Stop every loop (each finishes the message in hand) and wait for them."""
        with self._lock:
            loops, self.loops = list(self.loops.values()), {}
        for loop in loops:
            loop.stop.set()
        for loop in loops:
            loop.thread.join(timeout)
