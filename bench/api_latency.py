"""API and panel latency over HTTP against gunicorn (4 workers) with BENCH_TICKETS tickets (default 100,000;
20% open, seeded in bulk): p50 / p95 / max of the API's first page, filtered list, search and detail, the
moderator queue and its saved filters' counts (which the page loads after it is shown), the dashboard,
Flask-Admin's ticket list and a Flask-Admin search. Goal: p95 < 50 ms each.
Also the resident memory of each web worker after the run, and how long gunicorn took to answer.

    BENCH_TICKETS=100000 .venv/bin/python bench/api_latency.py      (BENCH_REQUESTS per case, default 40)
"""

from __future__ import annotations

import os
import random
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import requests
from api_support import (
    ADMIN,
    TICKETS,
    WORKERS,
    Gunicorn,
    api_token,
    bench_settings,
    db_script,
    page_session,
    percentile,
    rss_mb,
    seed,
)

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "40"))
GOAL_MS = 50.0


def measure(session: requests.Session, url: Callable[[], str], headers: dict[str, str]) -> list[float]:
    """REQUESTS timed GETs, after untimed ones that reach every worker (each worker's first request of a page loads
    its code and compiles its templates: ~300 ms for Flask-Admin's list). Sequential requests mostly land on the
    worker that answered the last one, so the warm-up sends WORKERS at a time, three times."""
    with ThreadPoolExecutor(WORKERS) as pool:
        for _ in range(3):
            targets = [url() for _ in range(WORKERS)]
            list(pool.map(lambda t: requests.get(t, headers=headers, cookies=session.cookies, timeout=300), targets))
    timings = []
    for _ in range(REQUESTS):
        target = url()
        began = time.perf_counter()
        response = session.get(target, headers=headers, timeout=120)
        timings.append((time.perf_counter() - began) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"GET {target}: {response.status_code} {response.text[:200]}")
    return timings


def main() -> None:
    settings = bench_settings()
    seeded, moderator = seed(settings)
    server = Gunicorn()
    print(f"gunicorn ({WORKERS} workers) answered /healthz {server.started_in:.1f}s after start", flush=True)
    rng = random.Random(1)
    word = urllib.parse.quote(seeded_word(seeded))
    try:
        url = server.url
        api = requests.Session()
        admin_api = {"Authorization": f"Bearer {api_token(url, ADMIN)}"}
        moderator_api = {"Authorization": f"Bearer {api_token(url, moderator)}"}
        admin_pages, moderator_pages = page_session(url, ADMIN), page_session(url, moderator)
        cases: list[tuple[str, requests.Session, Callable[[], str], dict[str, str]]] = [
            ("GET /api/tickets (first page)", api, lambda: f"{url}/api/tickets", admin_api),
            ("GET /api/tickets?status=open&priority=high", api, lambda: f"{url}/api/tickets?status=open&priority=high",
             admin_api),
            ("GET /api/tickets?scope=mine (moderator)", api, lambda: f"{url}/api/tickets?scope=mine", moderator_api),
            (f"GET /api/tickets?q={word}", api, lambda: f"{url}/api/tickets?q={word}", admin_api),
            ("GET /api/tickets/<n>", api,
             lambda: f"{url}/api/tickets/{rng.randint(seeded.first_number, seeded.last_number)}", admin_api),
            ("GET /queue (moderator)", moderator_pages, lambda: f"{url}/queue", {}),
            ("GET /queue/counts (moderator, loaded by the page)", moderator_pages, lambda: f"{url}/queue/counts", {}),
            ("GET /dashboard (admin: the team)", admin_pages, lambda: f"{url}/dashboard", {}),
            ("GET /dashboard (moderator: their own)", moderator_pages, lambda: f"{url}/dashboard", {}),
            ("GET /admin/tickets_admin/", admin_pages, lambda: f"{url}/admin/tickets_admin/", {}),
            (f"GET /admin/tickets_admin/?search={word}", admin_pages,
             lambda: f"{url}/admin/tickets_admin/?search={word}", {}),
        ]  # fmt: skip
        print(f"{TICKETS} tickets, {REQUESTS} requests per case, goal p95 < {GOAL_MS:.0f} ms", flush=True)
        print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()), flush=True)
        for name, session, target, headers in cases:
            timings = measure(session, target, headers)
            p95 = percentile(timings, 0.95)
            verdict = "ok" if p95 < GOAL_MS else "OVER GOAL"
            p50, top = percentile(timings, 0.5), max(timings)
            print(f"{name:52} p50 {p50:7.1f}  p95 {p95:7.1f}  max {top:7.1f} ms  [{verdict}]", flush=True)
        print("load average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()), flush=True)
        rss = [rss_mb(pid) for pid in server.worker_pids()]
        print(f"web worker RSS at {TICKETS} tickets: {', '.join(f'{r:.0f}' for r in sorted(rss))} MB (goal < 150 MB)")
    finally:
        server.stop()
        db_script("purge")


def seeded_word(seeded: object) -> str:
    """A word of a seeded subject, for searches that find a few hundred tickets."""
    from models import Ticket

    subject = Ticket.objects.only("subject").get(number=seeded.first_number + 1).subject  # type: ignore[attr-defined]
    words = [w for w in subject.split() if len(w) > 4 and w.isalpha()]
    return words[0] if words else subject.split()[0]


if __name__ == "__main__":
    main()
