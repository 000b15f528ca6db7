"""Acknowledgement latency: emails sent by SMTP one every 0.5 s to a running daemon (run_daemon.py);
time from sendmail() returning to the acknowledgement landing in the sink. Goal: p95 under 1 s.

    .venv/bin/python bench/ack_latency.py [N] [IMAP_IDLE_SECONDS]     (default 50, the setting's default)

BENCH_HISTORY=10000 first fills the database with that many old, answered tickets (with their messages,
requesters and sent acknowledgements), as a helpdesk has after months. Also prints how long the new
tickets waited for triage (ticket created -> triage completed).
"""

from __future__ import annotations

import email
import email.policy
import os
import signal
import smtplib
import subprocess
import sys
import threading
import time

from ingest_stack import (
    MAIL_PORTS,
    ROOT,
    SUPPORT,
    bench_settings,
    percentile,
    seed_history,
    settings_env,
    sink_files,
    start_stack,
    stop_stack,
    synthetic_email,
)


def watch_sink(seen: dict[str, float], stop: threading.Event) -> None:
    """Record when each acknowledgement (keyed by the In-Reply-To it answers) first appears."""
    known: set[str] = set()
    while not stop.is_set():
        for path in sink_files():
            if path.name in known:
                continue
            known.add(path.name)
            arrived = time.perf_counter()
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            seen.setdefault(str(message["In-Reply-To"]), arrived)
        time.sleep(0.005)


def report_triage_wait(message_ids: set[str], timeout: float = 120.0, label: str = "triage wait") -> None:
    """Time from ticket creation to triage completion for the benchmark's tickets."""
    from models import Ticket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tickets = list(Ticket.objects(source_message_id__in=list(message_ids)).only("created_at", "triage"))
        if len(tickets) == len(message_ids) and all(t.triage.state in ("done", "review") for t in tickets):
            break
        time.sleep(1)
    waits = [(t.triage.completed_at - t.created_at).total_seconds() for t in tickets if t.triage.completed_at]
    if waits:
        print(
            f"{label}: {len(waits)}/{len(message_ids)} triaged, p50 {percentile(waits, 0.5):.1f} s, "
            f"p95 {percentile(waits, 0.95):.1f} s, max {max(waits):.1f} s"
        )
    else:
        print(f"{label}: none of {len(message_ids)} tickets triaged within {timeout:.0f} s")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    start_stack()
    history = int(os.environ.get("BENCH_HISTORY", "0"))
    began = time.perf_counter()
    seed_history(history)
    if history:
        print(f"history: {history} old tickets seeded in {time.perf_counter() - began:.1f}s", flush=True)
    settings = bench_settings(**({"imap_idle_seconds": float(sys.argv[2])} if len(sys.argv) > 2 else {}))
    idle = settings.imap_idle_seconds
    daemon = subprocess.Popen(
        [sys.executable, "run_daemon.py", "--log-level", "WARNING"], cwd=ROOT, env=settings_env(settings)
    )
    seen: dict[str, float] = {}
    stop = threading.Event()
    watcher = threading.Thread(target=watch_sink, args=(seen, stop), daemon=True)
    watcher.start()
    try:
        with smtplib.SMTP("127.0.0.1", MAIL_PORTS["SMTP_IN_PORT"], timeout=10) as smtp:
            warmup = synthetic_email(-1)
            smtp.send_message(warmup, to_addrs=[SUPPORT])
            deadline = time.monotonic() + 60
            while warmup["Message-ID"] not in seen and time.monotonic() < deadline:
                time.sleep(0.05)
            # and until the daemon has triaged it: its first triage pass builds the in-memory ticket index
            report_triage_wait({warmup["Message-ID"]}, label="warm-up ticket (daemon start, index build)")
            sent: dict[str, float] = {}
            for index in range(count):
                message = synthetic_email(index)
                smtp.send_message(message, to_addrs=[SUPPORT])
                sent[message["Message-ID"]] = time.perf_counter()
                time.sleep(0.5)
        deadline = time.monotonic() + 30
        while any(mid not in seen for mid in sent) and time.monotonic() < deadline:
            time.sleep(0.05)
        latencies = [seen[mid] - at for mid, at in sent.items() if mid in seen]
        missing = len(sent) - len(latencies)
        print(f"IMAP_IDLE_SECONDS={idle}: {len(latencies)} acknowledgements, {missing} missing")
        if latencies:
            p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
            print(
                f"latency p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms "
                f"(goal p95 < 1000 ms: {'met' if p95 < 1.0 and not missing else 'NOT met'})"
            )
        report_triage_wait(set(sent))
        print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    finally:
        stop.set()
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
        stop_stack()


if __name__ == "__main__":
    main()
