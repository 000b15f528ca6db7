"""Crash safety: `kill -9` the daemon, FerretDB or PostgreSQL at random moments while the daemon ingests N
emails from the mailbox; restart what was killed; then count lost emails, duplicate tickets and duplicate
or missing acknowledgements. Goal: all exact (0 lost, 0 duplicates, every email acknowledged once).

    .venv/bin/python bench/crash_safety.py [TARGET] [N] [KILLS]     (default all 1000 8)

TARGET is daemon, ferretdb, postgres or all (the three, one after the other, each on a fresh stack).
Each kill waits until the daemon has stored more tickets since the previous one, then strikes within 1.5 s.
A killed daemon is restarted after its mailbox lease expires; a killed FerretDB or PostgreSQL is restarted
with scripts/db.sh start after a random pause, while the daemon keeps running (it is restarted too if it
exited on its own, and such exits are counted).
BENCH_MAILBOXES=2 splits the emails across two support mailboxes, which the daemon reads at the same time.
"""

from __future__ import annotations

import collections
import email
import email.policy
import os
import random
import signal
import subprocess
import sys
import time

import pymongo
from ingest_stack import (
    DB_DIR,
    ROOT,
    add_second_mailbox,
    append_split,
    bench_settings,
    script,
    settings_env,
    sink_files,
    start_stack,
    stop_stack,
    synthetic_email,
)

from models import disconnect_db

TARGETS = ("daemon", "ferretdb", "postgres")
LEASE_SECONDS = 3
ACK_LEASE_WAIT = 135  # an acknowledgement claimed by a killed daemon is retried after its 120 s lease


def read_pid(path: str) -> int | None:
    try:
        return int(open(path).readline().strip())
    except (OSError, ValueError):
        return None


def kill_server(target: str) -> None:
    pidfile = DB_DIR / "ferretdb.pid" if target == "ferretdb" else DB_DIR / "pg" / "postmaster.pid"
    pid = read_pid(str(pidfile))
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def restart_servers(timeout: float = 60.0) -> None:
    """scripts/db.sh start until it succeeds (PostgreSQL refuses while its orphaned backends still exit)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            script("db.sh", "start")
            return
        except subprocess.CalledProcessError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def counts(database, message_ids: set[str]) -> tuple[int, int, int]:  # noqa: ANN001 - a pymongo Database
    """(tickets for our emails, duplicate tickets, emails neither a ticket nor a threaded message)."""
    sources = collections.Counter(
        t["source_message_id"] for t in database.tickets.find({}, {"source_message_id": 1}) if "source_message_id" in t
    )
    stored = {m["message_id"] for m in database.ticket_messages.find({}, {"message_id": 1}) if "message_id" in m}
    ours = {k: v for k, v in sources.items() if k in message_ids}
    lost = len(message_ids - set(ours) - stored)
    return len(ours), sum(v - 1 for v in ours.values()), lost


def wait_for_progress(database, message_ids: set[str], last: int, timeout: float = 60.0) -> int:  # noqa: ANN001
    """Until more of our emails are tickets than `last` (or all are, or `timeout`); the new count."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            now = counts(database, message_ids)[0]
        except pymongo.errors.PyMongoError:
            now = last
        if now > last or now >= len(message_ids):
            return now
        time.sleep(0.1)
    return last


def acknowledgements(message_ids: set[str]) -> collections.Counter:
    acks: collections.Counter = collections.Counter()
    for path in sink_files():
        reply_to = str(email.message_from_bytes(path.read_bytes(), policy=email.policy.default)["In-Reply-To"])
        if reply_to in message_ids:
            acks[reply_to] += 1
    return acks


def run(target: str, count: int, kills: int, rng: random.Random) -> bool:
    settings = start_stack()
    env = settings_env(bench_settings(mailbox_lease_seconds=LEASE_SECONDS))
    database = pymongo.MongoClient(settings.mongo_uri, serverSelectionTimeoutMS=2000).get_default_database()
    try:
        raws, message_ids = [], set()
        for index in range(count):
            message = synthetic_email(index)
            message_ids.add(message["Message-ID"])
            raws.append(bytes(message))
        append_split(settings, add_second_mailbox(settings), raws)
        disconnect_db()  # the bench's own mongoengine connection is not needed while servers die
        command = [sys.executable, "run_daemon.py", "--log-level", "WARNING"]
        began = time.monotonic()
        daemon = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
        done, exits = 0, 0
        last = 0
        while done < kills:
            last = wait_for_progress(database, message_ids, last)  # kill while it works, not while it starts
            time.sleep(rng.uniform(0.0, 1.5))
            if target == "daemon":
                daemon.send_signal(signal.SIGKILL)
                daemon.wait()
                time.sleep(LEASE_SECONDS + 0.1)  # the dead holder's mailbox lease expires
                daemon = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
            else:
                kill_server(target)
                time.sleep(rng.uniform(0.2, 2.0))
                restart_servers()
            done += 1
            if daemon.poll() is not None:
                exits += 1
                daemon = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
        try:
            so_far = counts(database, message_ids)[0]
        except pymongo.errors.PyMongoError:
            so_far = -1
        print(
            f"[{target}] {done} kills in {time.monotonic() - began:.0f}s (tickets when they ended: {so_far}); "
            f"daemon exits on its own: {exits}",
            flush=True,
        )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if counts(database, message_ids)[0] >= count:
                    break
            except pymongo.errors.PyMongoError:
                pass
            time.sleep(1)
        wait_until = time.monotonic() + ACK_LEASE_WAIT
        while time.monotonic() < wait_until and len(acknowledgements(message_ids)) < count:
            time.sleep(2)
        time.sleep(5)  # a late duplicate would land now
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
        tickets, duplicates, lost = counts(database, message_ids)
        acks = acknowledgements(message_ids)
        extra = sum(n - 1 for n in acks.values() if n > 1)
        missing = len(message_ids - set(acks))
        print(f"[{target}] emails {count}, tickets {tickets}, duplicate tickets {duplicates}, lost emails {lost}")
        print(f"[{target}] acknowledgements {sum(acks.values())}: duplicates {extra}, emails without one {missing}")
        ok = duplicates == 0 and lost == 0 and extra == 0 and missing == 0 and tickets == count
        print(f"[{target}] load average (1, 5, 15 min): " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
        print(f"[{target}] result:", "PASS" if ok else "FAIL", flush=True)
        return ok
    finally:
        stop_stack()


def main() -> None:
    target = sys.argv[1] if len(sys.argv) > 1 else "all"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    kills = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    if target not in (*TARGETS, "all"):
        raise SystemExit(f"usage: bench/crash_safety.py [{'|'.join(TARGETS)}|all] [N] [KILLS]")
    rng = random.Random(20261201)
    results = {name: run(name, count, kills, rng) for name in (TARGETS if target == "all" else (target,))}
    print("summary:", ", ".join(f"{name} {'PASS' if ok else 'FAIL'}" for name, ok in results.items()))
    sys.exit(0 if all(results.values()) else 1)


if __name__ == "__main__":
    main()
