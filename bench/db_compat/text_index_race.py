"""Writers and word searches on one text-indexed collection at once, until the server fails or time is up.

A PostgreSQL backend died twice in DocumentDB's text index (Debian's rum.so) during bench/burst.py, where new
tickets are inserted, triage writes their summaries and the API searches for a word, all at the same moment
(docs/db-compat.md). This repeats that mix without the app:

    DB_DIR=.cache/rum-race DB_PORT=27451 bash scripts/db.sh start
    .venv/bin/python bench/db_compat/text_index_race.py mongodb://127.0.0.1:27451/ [seconds]

It prints the operations done and every error, and exits 1 when a connection was lost (then look for
"segfault ... in rum.so" in `dmesg` and "terminated by signal 11" in the PostgreSQL log).
"""

from __future__ import annotations

import random
import sys
import threading
import time
import uuid
from collections.abc import Callable

import pymongo
from pymongo.errors import PyMongoError

WORDS = "invoice refund login password vpn outage billing shipment account error broken slow".split()
WRITERS, UPDATERS, SEARCHERS = 2, 2, 2
ROUND = 3000  # documents per round: each round starts a new collection, as each burst starts a new helpdesk
BATCH = 50
BATCH_PAUSE = 0.5  # seconds between a writer's batches: ~200 documents a second from two writers, like intake


def text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def main() -> int:
    uri = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 300.0
    client = pymongo.MongoClient(uri, maxPoolSize=20)
    database = client["rum_race_" + uuid.uuid4().hex[:8]]
    lock, stop = threading.RLock(), threading.Event()
    done = {"round": 0, "insert": 0, "update": 0, "search": 0}
    state: dict = {}
    errors: list[str] = []

    def new_round() -> None:
        tickets = database[f"tickets_{done['round']}"]
        tickets.create_index([("number", 1)], unique=True)
        tickets.create_index([("subject", "text"), ("summary", "text")], default_language="english")
        state.update(tickets=tickets, numbers=iter(range(1, ROUND + 1)), top=0)
        done["round"] += 1

    def numbers(n: int) -> list[int]:
        with lock:
            taken = [number for _, number in zip(range(n), state["numbers"], strict=False)]
            if not taken:
                new_round()
                return numbers(n)
            state["top"] = max(state["top"], taken[-1])
            return taken

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            batch = [{"number": n, "subject": text(rng, 6), "summary": ""} for n in numbers(BATCH)]
            state["tickets"].insert_many(batch)
            done["insert"] += len(batch)
            time.sleep(BATCH_PAUSE)

    def updater(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            top = state["top"]
            if top < 100:
                time.sleep(0.05)
                continue
            state["tickets"].update_one(
                {"number": rng.randint(max(1, top - 500), top)}, {"$set": {"summary": text(rng, 12)}}
            )
            done["update"] += 1

    def searcher(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            query = {"$text": {"$search": rng.choice(WORDS)}}
            list(state["tickets"].find(query).sort("number", -1).limit(26))
            state["tickets"].count_documents(query, limit=200)
            done["search"] += 1

    def run(target: Callable[[int], None], seed: int) -> None:
        try:
            target(seed)
        except PyMongoError as exc:
            errors.append(f"{target.__name__}: {type(exc).__name__}: {str(exc)[:200]}")
            stop.set()

    new_round()
    roles = [writer] * WRITERS + [updater] * UPDATERS + [searcher] * SEARCHERS
    threads = [threading.Thread(target=run, args=(role, i)) for i, role in enumerate(roles)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    while not stop.is_set() and time.monotonic() - began < seconds:
        time.sleep(5)
        print(f"{time.monotonic() - began:6.0f} s  {done}", flush=True)
    stop.set()
    for thread in threads:
        thread.join()
    try:
        client.drop_database(database.name)
    except PyMongoError as exc:
        errors.append(f"drop: {exc}")
    print("errors:", errors or "none")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
