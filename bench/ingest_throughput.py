"""Throughput: N emails in the mailbox -> tickets per second end to end (fetch, parse, store, acknowledge),
beside the raw imapclient fetch rate of the same mailbox. Goal: at least 300 emails/s.

    .venv/bin/python bench/ingest_throughput.py [N]      (default 2000)

BENCH_MAILBOXES=2 splits the N emails across two support mailboxes, read at the same time (one thread each).
"""

from __future__ import annotations

import logging
import os
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from cpu import cpu_by_program, cpu_used, machine_busy_seconds
from ingest_stack import (
    MAILBOXES,
    add_second_mailbox,
    append_split,
    sink_files,
    start_stack,
    stop_stack,
    synthetic_email,
)

from daemon.mailbox import connect
from daemon.poller import poll_once
from models import Ticket


def raw_fetch_rate(settings, batch: int = 200) -> tuple[int, float]:  # noqa: ANN001
    with connect(settings) as client:
        client.select_folder("INBOX", readonly=True)
        uids = client.search(["ALL"])
        started = time.perf_counter()
        fetched = 0
        for start in range(0, len(uids), batch):
            fetched += len(client.fetch(uids[start : start + batch], ["BODY.PEEK[]"]))
        return fetched, time.perf_counter() - started


def _cpu_seconds() -> float:
    """User + system CPU of this process and its finished children (the parser process)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    logging.basicConfig(level=logging.WARNING)
    settings = start_stack()
    try:
        raws = [bytes(synthetic_email(i)) for i in range(count)]
        started = time.perf_counter()
        second = add_second_mailbox(settings)
        append_split(settings, second, raws)
        print(f"appended {count} emails to {MAILBOXES} mailbox(es) in {time.perf_counter() - started:.1f} s")

        fetched, fetch_seconds = raw_fetch_rate(settings)
        raw_rate = fetched / fetch_seconds
        print(
            f"raw imapclient fetch (BODY.PEEK[], batches of 200): {fetched} in {fetch_seconds:.2f} s"
            f" = {raw_rate:,.0f}/s"
        )

        started, cpu = time.perf_counter(), _cpu_seconds()
        busy, programs = machine_busy_seconds(), cpu_by_program()
        readers = [settings] if second is None else [settings, second]
        with ThreadPoolExecutor(len(readers)) as pool:  # each mailbox read at the same time, as the daemon does
            processed = sum(result.processed for result in pool.map(poll_once, readers))
        seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
        busy, programs = machine_busy_seconds() - busy, cpu_used(programs, cpu_by_program())
        tickets = Ticket._get_collection().count_documents({})  # exact (an unfiltered .count() is an estimate)
        rate = tickets / seconds
        print(
            f"end to end: {processed} processed, {tickets} tickets, {len(sink_files())} acknowledgements "
            f"in {seconds:.1f} s = {rate:.1f} tickets/s"
        )
        print(f"daemon-side CPU (this process and its parser process): {cpu * 1000 / max(1, tickets):.1f} ms per email")
        cores = os.cpu_count() or 1
        print(
            f"whole machine meanwhile: {busy * 1000 / max(1, tickets):.1f} ms of CPU per email, {busy / seconds:.2f} of"
            f" {cores} cores busy (at that cost {cores} busy cores would ingest {tickets * cores / busy:.0f}/s);"
            f" by program (s): {programs}"
        )
        print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
        print(
            f"ratio end-to-end / raw fetch: {rate / raw_rate:.4f} (goal: >= 300 tickets/s: "
            f"{'met' if rate >= 300 else 'NOT met'})"
        )
    finally:
        stop_stack()


if __name__ == "__main__":
    main()
