"""Crash safety: `kill -9` the daemon at random moments while it ingests N emails, restarting it each
time; then count tickets, duplicates, lost emails and acknowledgements.

    .venv/bin/python bench/crash_safety.py [N] [KILLS]      (default 500, 20)
"""

from __future__ import annotations

import collections
import email
import email.policy
import random
import signal
import subprocess
import sys
import time

from ingest_stack import (
    ROOT,
    append_all,
    bench_settings,
    settings_env,
    sink_files,
    start_stack,
    stop_stack,
    synthetic_email,
)

from models import Ticket


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    kills = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    rng = random.Random(20261125)
    settings = start_stack()
    env = settings_env(bench_settings(mailbox_lease_seconds=3))
    try:
        message_ids = []
        raws = []
        for index in range(count):
            message = synthetic_email(index)
            message_ids.append(message["Message-ID"])
            raws.append(bytes(message))
        append_all(settings, raws)
        command = [sys.executable, "run_daemon.py", "--log-level", "WARNING"]
        done_kills = 0
        while done_kills < kills and Ticket.objects.count() < count:
            daemon = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.8, 3.0))  # start-up is ~0.7 s; kill somewhere in the work
            daemon.send_signal(signal.SIGKILL)
            daemon.wait()
            done_kills += 1
            time.sleep(3.1)  # the dead holder's mailbox lease expires (MAILBOX_LEASE_SECONDS=3)
        print(f"{done_kills} kills; tickets after the kills: {Ticket.objects.count()}")
        final = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while Ticket.objects.count() < count and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(135)  # acknowledgements claimed by a killed process are resent after their 120 s lease
        final.send_signal(signal.SIGTERM)
        final.wait(timeout=60)

        sources = [t.source_message_id for t in Ticket.objects.only("source_message_id")]
        duplicates = len(sources) - len(set(sources))
        lost = len(set(message_ids) - set(sources))
        acks = collections.Counter()
        for path in sink_files():
            acks[str(email.message_from_bytes(path.read_bytes(), policy=email.policy.default)["In-Reply-To"])] += 1
        extra = sum(n - 1 for n in acks.values() if n > 1)
        unacknowledged = len(set(message_ids) - set(acks))
        print(
            f"emails {count}, tickets {len(sources)}, distinct {len(set(sources))}, duplicate tickets {duplicates}, "
            f"lost emails {lost}"
        )
        print(
            f"acknowledgements {sum(acks.values())}: tickets acknowledged twice or more {extra} "
            f"(allowed: at most one per kill = {done_kills}), tickets without one {unacknowledged}"
        )
        ok = duplicates == 0 and lost == 0 and extra <= done_kills and unacknowledged == 0
        print("result:", "PASS" if ok else "FAIL")
    finally:
        stop_stack()


if __name__ == "__main__":
    main()
