"""The mailbox loop: hold the lease, read new mail, ingest it, acknowledge at once, wait with IDLE.

`poll_once` is one bounded pass (run_daemon --once, tests, benchmarks); `run_mailbox_loop` is the
long-running IDLE loop with reconnect and backoff, stopped by a threading.Event (SIGTERM).
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from config import Settings
from daemon.bulk import ingest_batch, parse_all
from daemon.lease import Lease, make_holder_id
from daemon.mailbox import Mailbox, connect, mailbox_name, record_poll_failure
from daemon.outbox import deliver_claimed
from daemon.outcomes import Created, Outcome
from daemon.pressure import intake_backlog
from models import OutboundEmail

logger = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 60.0
CHUNK_SIZE = 200  # messages ingested (bulk-written, flagged, acknowledged) together
PARSE_AHEAD = 2  # chunks fetched and handed to the parser process ahead of the one being stored
PARENT_CHECK_SECONDS = 1.0
POLL_RECORD_SECONDS = 30.0  # how often an idle loop notes "last polled" on the cursor
# The sender thread waits on many short round trips (four SMTP commands and a database write per acknowledgement);
# after each it needs the GIL back from the storing thread, which at the default 5 ms made one ack cost ~3x more.
SWITCH_INTERVAL_SECONDS = 0.0005
# SMTP connections sending a chunk's acknowledgements side by side; each marks every email "sent" before it
# sends its next, so a crash can leave at most this many sent but unmarked (sent again after their claim expires).
ACK_SENDERS = 4
# Set when intake has created tickets: the daemon's main thread then runs the triage job at once instead of at
# its next one-second tick (daemon/scheduler.py). Cleared by that thread.
NEW_TICKETS = threading.Event()
_PARSER: ProcessPoolExecutor | None = None
_PARSER_LOCK = threading.Lock()


@dataclass
class PassResult:
    outcomes: Counter = field(default_factory=Counter)  # outcome class name -> count
    processed: int = 0
    lease_held: bool = True


def poll_once(
    settings: Settings,
    *,
    max_messages: int | None = None,
    stop: threading.Event | None = None,
    lease: Lease | None = None,
) -> PassResult:
    """Connect, take the lease, ingest every new message (up to max_messages), and return.

    A failed poll (login refused, folder missing, connection lost) is recorded on the cursor, then raised.
    """
    lease = lease or Lease(mailbox_name(settings), make_holder_id(), settings.mailbox_lease_seconds)
    if not lease.acquire():
        logger.info("mailbox %s is read by another instance; standing by", lease.name)
        return PassResult(lease_held=False)
    try:
        with connect(settings) as client:
            mailbox = Mailbox(client, settings)
            mailbox.select()
            result = process_new(mailbox, settings, lease=lease, max_messages=max_messages, stop=stop)
            mailbox.record_poll()
            return result
    except Exception as exc:
        record_poll_failure(settings, exc)
        raise
    finally:
        lease.release()


def process_new(
    mailbox: Mailbox,
    settings: Settings,
    *,
    lease: Lease,
    max_messages: int | None = None,
    stop: threading.Event | None = None,
) -> PassResult:
    """Ingest the folder's new messages in UID order, in chunks: plain new emails are written in bulk.

    Three things overlap: a worker process parses the next chunks (a backlog of more than one chunk only),
    this thread stores the current one, ACK_SENDERS threads send the previous one's acknowledgements.
    On `stop` (SIGTERM) the chunk in hand is finished, flagged and acknowledged; the rest waits.
    """
    result = PassResult()
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    uids = mailbox.new_uids()
    if max_messages is not None:
        uids = uids[:max_messages]
    chunks = _chunks(mailbox, uids)
    # a worker process parses ahead for a backlog of more than one chunk (parsing is CPU-bound, and in a thread it
    # would hold the GIL against the store and the senders); a trickle is parsed inline
    parser = _parser_process() if len(uids) > CHUNK_SIZE else None
    # acknowledgements (already stored, claimed) go out on sender threads while the next chunk is ingested
    with (
        ThreadPoolExecutor(max_workers=ACK_SENDERS, thread_name_prefix="ack-sender") as sender,
        intake_backlog(len(uids) > CHUNK_SIZE),  # the triage and outbox jobs give way meanwhile (daemon/pressure.py)
    ):
        sending: list[Future] = []
        ahead: deque[tuple[list[tuple[str, bytes]], list[int], Future | None]] = deque()
        while not (stop is not None and stop.is_set()):
            while len(ahead) < PARSE_AHEAD and (chunk := next(chunks, None)):
                items = [(f"{mailbox.name}#{uid}", raw) for uid, raw in chunk]
                ahead.append((items, [uid for uid, _ in chunk], _submit(parser, items)))
            if not ahead:
                break
            if not lease.renew_if_due():
                result.lease_held = False
                break
            items, chunk_uids, parsing = ahead.popleft()
            outcomes = ingest_batch(items, settings, _parsed(parser, parsing))
            for uid, outcome in zip(chunk_uids, outcomes, strict=True):
                _log(uid, outcome)
                result.outcomes[type(outcome).__name__] += 1
            result.processed += len(items)
            if any(isinstance(o, Created) for o in outcomes):
                NEW_TICKETS.set()
            acks = [o.ack for o in outcomes if isinstance(o, Created) and o.ack is not None]
            for done in sending:
                done.result()  # at most one chunk's acknowledgements in flight
            shares = [acks[i::ACK_SENDERS] for i in range(min(ACK_SENDERS, len(acks)))]
            sending = [sender.submit(_send_acks, share, settings) for share in shares]
            mailbox.mark_done(chunk_uids)
        for done in sending:
            done.result()
    return result


def _chunks(mailbox: Mailbox, uids: list[int]) -> Iterator[list[tuple[int, bytes]]]:
    """The messages, fetched (in this thread: IMAP is not thread-safe) CHUNK_SIZE at a time."""
    messages = mailbox.fetch(uids)
    while chunk := list(itertools.islice(messages, CHUNK_SIZE)):
        yield chunk


def _parser_process() -> ProcessPoolExecutor:
    """One parser process for the daemon's life, started with its first backlog and shared by its mailbox loops.
    (Started per pass, as before, it cost each pass of a burst 3-6 s of intake on a loaded machine: a fresh
    interpreter importing the parser.)"""
    global _PARSER
    with _PARSER_LOCK:
        if _PARSER is None:
            # spawn, not fork: this process runs threads (scheduler, pymongo monitors) whose locks a fork would copy
            context = multiprocessing.get_context("spawn")
            _PARSER = ProcessPoolExecutor(1, mp_context=context, initializer=exit_with_parent, initargs=(os.getpid(),))
        return _PARSER


def _drop_parser(broken: ProcessPoolExecutor) -> None:
    """Forget a parser process that died (killed, out of memory): the next backlog starts another."""
    global _PARSER
    with _PARSER_LOCK:
        if _PARSER is broken:
            _PARSER = None
    broken.shutdown(wait=False, cancel_futures=True)


def _submit(parser: ProcessPoolExecutor | None, items: list[tuple[str, bytes]]) -> Future | None:
    if parser is None:
        return None
    try:
        return parser.submit(parse_all, items)
    except BrokenProcessPool:
        _drop_parser(parser)
        return None


def _parsed(parser: ProcessPoolExecutor | None, parsing: Future | None) -> list | None:
    """The chunk parsed by the parser process, or None (the caller parses it) when that process died meanwhile."""
    if parser is None or parsing is None:
        return None
    try:
        return parsing.result()
    except BrokenProcessPool:
        logger.warning("the parser process died; this chunk is parsed here, the next backlog starts another")
        _drop_parser(parser)
        return None


def exit_with_parent(parent: int) -> None:
    """In a worker process: exit once `parent` is gone (a daemon killed with -9 must not leave its parser behind,
    and the worker's own copy of its task pipe keeps it from ever reading end-of-file)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _send_acks(acks: list[OutboundEmail], settings: Settings) -> None:
    try:
        deliver_claimed(acks, settings)
    except Exception:  # claimed acknowledgements are retried by the outbox job once their claim expires
        logger.exception("sending acknowledgements failed; the outbox job retries them")


def _log(uid: int, outcome: Outcome) -> None:
    logger.info("message uid %s: %s", uid, outcome.describe())


def run_mailbox_loop(settings: Settings, stop: threading.Event) -> None:
    """Until `stop` is set: hold the lease, process new mail, wait with IDLE (or poll), reconnect on errors."""
    lease = Lease(mailbox_name(settings), make_holder_id(), settings.mailbox_lease_seconds)
    backoff = 1.0
    while not stop.is_set():
        try:
            if not lease.acquire():
                stop.wait(min(settings.poll_interval_seconds, settings.mailbox_lease_seconds / 3))
                continue
            with connect(settings) as client:
                mailbox = Mailbox(client, settings)
                mailbox.select()
                backoff = 1.0
                _serve(mailbox, settings, lease, stop)
        except Exception as exc:  # network, server restart, database outage: retry with backoff
            record_poll_failure(settings, exc)
            logger.warning("mailbox loop error (%s: %s); reconnecting in %.0f s", type(exc).__name__, exc, backoff)
            stop.wait(backoff)
            backoff = min(MAX_BACKOFF_SECONDS, backoff * 2)
    lease.release()


def _serve(mailbox: Mailbox, settings: Settings, lease: Lease, stop: threading.Event) -> None:
    recorded = 0.0
    while not stop.is_set():
        result = process_new(mailbox, settings, lease=lease, stop=stop)
        if result.processed or time.monotonic() - recorded > POLL_RECORD_SECONDS:
            mailbox.record_poll()
            recorded = time.monotonic()
        if not result.lease_held or not lease.renew_if_due():
            return
        if stop.is_set():
            return
        if mailbox.can_idle:
            _idle(mailbox, settings)
        else:
            stop.wait(settings.poll_interval_seconds)


def _idle(mailbox: Mailbox, settings: Settings) -> None:
    """Wait for the server's push, at most IMAP_IDLE_SECONDS (then the loop re-checks everything)."""
    client = mailbox.client
    client.idle()
    started = time.monotonic()
    try:
        while time.monotonic() - started < settings.imap_idle_seconds:
            responses = client.idle_check(timeout=max(0.05, settings.imap_idle_seconds - (time.monotonic() - started)))
            if any(isinstance(r, tuple) and len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                break
    finally:
        client.idle_done()
