"""Triage throughput: offline tickets/s, and the Gemini path against the local fake with added latency.

Run: .venv/bin/python bench/triage_throughput.py [--latency 0.8] [--tickets 48]
Part 1 times the offline model alone (fresh-install model; and one trained on ../shared dev.csv if present).
Part 2 runs the real triage job end to end (FerretDB started on its own port, Gemini fake with latency): the
offline model on batches (claim, classify, bulk write, route and notify), and Gemini at several
GEMINI_CONCURRENCY values: it must scale with concurrency, not run one request at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEV = ROOT.parent / "shared" / "corpus" / "tickets" / "dev.csv"
BENCH_DB_PORT = 27090


def offline_figures(count: int) -> dict:
    from triage.dataset import read_dataset
    from triage.evaluate import taxonomy_from
    from triage.local import Example, OfflineModel
    from triage.provider import Taxonomy, TriageInput
    from triage.taxonomy import DEFAULT_CATEGORIES, DEFAULT_SKILLS

    figures = {}
    seeds = [Example(n, d + " " + " ".join(k), category=n) for n, (d, k, _) in DEFAULT_CATEGORIES.items()]
    seeds += [Example(n, d, skills=[n]) for n, (d, _) in DEFAULT_SKILLS.items()]
    seeds += [Example("", "urgent asap down", priority="urgent"), Example("", "question", priority="low")]
    seeds += [Example("", "error broken", priority="high"), Example("", "help please", priority="medium")]
    taxonomy = Taxonomy(tuple(DEFAULT_CATEGORIES), tuple(DEFAULT_SKILLS), ("low", "medium", "high", "urgent"))
    keywords = {n: k for n, (_, k) in DEFAULT_SKILLS.items()}
    models = {"fresh_install": OfflineModel.train(taxonomy, [], seeds, keywords)}
    items = [TriageInput("Charged twice", "My card was charged twice for the March invoice, please refund.")] * count
    if DEV.exists():
        rows = read_dataset(str(DEV)).rows
        random.Random(42).shuffle(rows)
        train = [Example(r.subject, r.body, r.category, r.priority, r.skills or None) for r in rows[:2282]]
        models["trained_on_dev_csv"] = OfflineModel.train(taxonomy_from(rows[:2282]), train, [], {})
        items = [TriageInput(r.subject, r.body) for r in rows[2282:]] * (count // 571 + 1)
        items = items[:count]
    for name, model in models.items():
        started = time.perf_counter()
        for item in items:  # one at a time, as the triage job calls it
            model.predict([item])
        one_by_one = len(items) / (time.perf_counter() - started)
        started = time.perf_counter()
        model.predict(items)
        batched = len(items) / (time.perf_counter() - started)
        figures[name] = {
            "tickets_per_second_one_by_one": round(one_by_one),
            "tickets_per_second_batched": round(batched),
        }
    return figures


def gemini_figures(latency: float, count: int, concurrencies: list[int], offline_count: int) -> dict:
    import mongoengine

    from config import load_settings
    from models import Ticket, connect_db, ensure_all_indexes
    from tests.gemini_fake import FakeGemini
    from tests.triage_support import make_staff, make_ticket
    from triage.jobs import triage_job
    from triage.provider import TriageInput
    from triage.service import LocalProvider
    from triage.taxonomy import ensure_default_taxonomy, load_taxonomy

    db_dir = tempfile.mkdtemp(prefix="triage-bench-db-")
    env = {**os.environ, "DB_DIR": db_dir, "DB_PORT": str(BENCH_DB_PORT)}
    subprocess.run(["bash", str(ROOT / "scripts" / "db.sh"), "start"], env=env, check=True, capture_output=True)
    fake = FakeGemini(latency=latency)
    figures = {}
    try:
        connect_db(f"mongodb://127.0.0.1:{BENCH_DB_PORT}/triage_bench")
        for concurrency in [0, *concurrencies]:  # 0: the offline provider end to end
            database = mongoengine.get_db()
            for name in database.list_collection_names():
                database[name].delete_many({})
            ensure_all_indexes()
            ensure_default_taxonomy()
            make_staff("admin@bench.test", role="admin")
            make_staff("billing@bench.test", skills=["payments", "refunds"])
            for i in range(count if concurrency else offline_count):
                make_ticket(f"Charged twice {i}", "My card was charged twice for March.")
            settings = load_settings(
                environ={},
                env_file=None,
                secret_key="bench-secret-0123456789-abcdefghijkl",
                jwt_secret_key="bench-jwt-0123456789-abcdefghijklmnop",
                mongo_uri=f"mongodb://127.0.0.1:{BENCH_DB_PORT}/triage_bench",
                triage_provider="gemini" if concurrency else "local",
                gemini_api_key="bench",
                gemini_base_url=fake.base_url,
                gemini_model="gemini-bench",
                gemini_concurrency=max(concurrency, 1),
                gemini_requests_per_minute=100_000,
                model_dir=os.path.join(db_dir, "model"),
            )
            if not concurrency:  # warm-up: trains and saves the fresh-install model
                LocalProvider(settings).triage(TriageInput("warm", "up"), load_taxonomy())
            fake.max_in_flight = 0
            started = time.perf_counter()
            while Ticket.objects(triage__state="pending").count():  # a pass stops after jobs.PASS_SECONDS
                triage_job(settings)
            elapsed = time.perf_counter() - started
            done = Ticket.objects(triage__state__in=["done", "review"]).count()
            figures[f"concurrency_{concurrency}" if concurrency else "offline_end_to_end"] = {
                "tickets": done,
                "seconds": round(elapsed, 2),
                "tickets_per_second": round(done / elapsed, 2),
                "max_requests_in_flight": fake.max_in_flight,
            }
    finally:
        fake.close()
        mongoengine.disconnect()
        subprocess.run(["bash", str(ROOT / "scripts" / "db.sh"), "purge"], env=env, capture_output=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.8, help="seconds the fake adds to each answer")
    parser.add_argument("--tickets", type=int, default=48, help="tickets per Gemini run")
    parser.add_argument("--offline-tickets", type=int, default=2000)
    parser.add_argument("--job-tickets", type=int, default=600, help="tickets for the offline job end to end")
    parser.add_argument("--concurrency", default="1,4,8")
    args = parser.parse_args()
    report: dict = {"load_average_before": [round(x, 2) for x in os.getloadavg()]}
    report["offline"] = offline_figures(args.offline_tickets)
    report["gemini_fake_latency_seconds"] = args.latency
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    report["gemini"] = gemini_figures(args.latency, args.tickets, concurrencies, args.job_tickets)
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
