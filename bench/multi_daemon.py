"""Several instances: three run_daemon.py processes on one mailbox and one database ingest N emails.
Goal: 0 lost, 0 duplicate tickets, 0 duplicate acknowledgements, each ticket triaged exactly once.

    .venv/bin/python bench/multi_daemon.py [N] [DAEMONS]      (default 5000 3)

"Triaged once" is read from the ticket itself: `triage.attempts` counts the claims of a ticket by the
triage queue and `triage.state` ends in done/review; moderator notifications per ticket (kind
"notification" in the outbox) show a routing done twice. `triage.claimed_by` shows how the work was shared.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time

import pymongo
from crash_safety import acknowledgements, counts
from ingest_stack import ROOT, append_all, bench_settings, settings_env, start_stack, stop_stack, synthetic_email

from models import disconnect_db


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    instances = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    settings = start_stack()
    database = pymongo.MongoClient(settings.mongo_uri).get_default_database()
    database.users.insert_one({"email": "admin@example.test", "role": "admin", "skills": [], "active": True})
    daemons: list[subprocess.Popen] = []
    try:
        raws, message_ids = [], set()
        for index in range(count):
            message = synthetic_email(index)
            message_ids.add(message["Message-ID"])
            raws.append(bytes(message))
        began = time.monotonic()
        append_all(settings, raws)
        print(f"{count} emails appended to the mailbox in {time.monotonic() - began:.1f}s", flush=True)
        disconnect_db()
        env = settings_env(bench_settings())
        began = time.monotonic()
        daemons = [
            subprocess.Popen([sys.executable, "run_daemon.py", "--log-level", "WARNING"], cwd=ROOT, env=env)
            for _ in range(instances)
        ]
        deadline, ingested_at, triaged_at = began + 1800, None, None  # triage of 5,000 took >15 min on a loaded box
        while time.monotonic() < deadline:
            tickets = counts(database, message_ids)[0]
            if tickets >= count and ingested_at is None:
                ingested_at = time.monotonic() - began
            pending = database.tickets.count_documents({"triage.state": {"$nin": ["done", "review", "failed"]}})
            if ingested_at is not None and pending == 0:
                triaged_at = time.monotonic() - began
                if len(acknowledgements(message_ids)) >= count:
                    break
            time.sleep(2)
        time.sleep(5)  # a late duplicate would land now
        for daemon in daemons:
            daemon.send_signal(signal.SIGTERM)
        for daemon in daemons:
            try:
                daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                daemon.kill()
        exits = [d.returncode for d in daemons]

        tickets, duplicates, lost = counts(database, message_ids)
        acks = acknowledgements(message_ids)
        extra_acks = sum(n - 1 for n in acks.values() if n > 1)
        missing_acks = len(message_ids - set(acks))
        rows = list(database.tickets.find({}, {"number": 1, "triage": 1}))
        attempts = collections.Counter(int((r.get("triage") or {}).get("attempts", 0)) for r in rows)
        states = collections.Counter((r.get("triage") or {}).get("state", "?") for r in rows)
        workers = collections.Counter((r.get("triage") or {}).get("claimed_by", "?") for r in rows)
        notified = collections.Counter(
            n["ticket_number"] for n in database.outbox.find({"kind": "notification"}, {"ticket_number": 1})
        )
        renotified = sum(1 for n in notified.values() if n > 1)
        print(f"{instances} daemons, {count} emails: ingested in {ingested_at or float('nan'):.1f}s, "
              f"triaged by {triaged_at or float('nan'):.1f}s; exit codes {exits}")  # fmt: skip
        print(f"tickets {tickets}, duplicate tickets {duplicates}, lost emails {lost}")
        print(f"acknowledgements {sum(acks.values())}: duplicates {extra_acks}, emails without one {missing_acks}")
        print(f"triage attempts per ticket {dict(sorted(attempts.items()))}, states {dict(states)}")
        print(f"triage shared by {len(workers)} workers: {sorted(workers.values(), reverse=True)}")
        print(
            f"moderator notifications: {sum(notified.values())} for {len(notified)} tickets, {renotified} twice or more"
        )
        if triaged_at is None:
            print("NOT FINISHED: triage was still running at the deadline (a time-out, not a duplicate)")
        once = set(attempts) == {1} and set(states) <= {"done", "review"} and renotified == 0
        ok = tickets == count and duplicates == 0 and lost == 0 and extra_acks == 0 and missing_acks == 0 and once
        print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
        print("result:", "PASS" if ok else "FAIL")
        sys.exit(0 if ok else 1)
    finally:
        for daemon in daemons:
            if daemon.poll() is None:
                daemon.kill()
        stop_stack()


if __name__ == "__main__":
    main()
