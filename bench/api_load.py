"""20 concurrent clients for 30 s against the app served by gunicorn (4 workers) with BENCH_TICKETS tickets
(default 100,000, seeded in bulk): requests per second, latency, errors. Goal: 0 errors.

Each client loops over GET /api/tickets (filtered), GET /api/tickets/<n> and GET /api/me with keep-alive;
one request in ten is a POST of an internal note instead.

    BENCH_TICKETS=100000 .venv/bin/python bench/api_load.py
"""

from __future__ import annotations

import http.client
import json
import os
import random
import threading
import time

from api_support import ADMIN, PASSWORD, TICKETS, WORKERS, Gunicorn, bench_settings, db_script, percentile, rss_mb, seed

CLIENTS = 20
DURATION = 30.0
WRITE_SHARE = 0.1


def login(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = json.dumps({"email": ADMIN, "password": PASSWORD})
    conn.request("POST", "/api/auth/login", body=body, headers={"Content-Type": "application/json"})
    return json.loads(conn.getresponse().read())["access_token"]


def client_loop(port: int, token: str, stop: float, seed_value: int, results: dict, numbers: tuple[int, int]) -> None:
    rng = random.Random(seed_value)
    headers = {"Authorization": f"Bearer {token}"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    ok = errors = 0
    timings = []
    while time.monotonic() < stop:
        method, body, expected = "GET", None, 200
        url = rng.choice(["/api/tickets?status=open&per_page=25", f"/api/tickets/{rng.randint(*numbers)}", "/api/me"])
        if rng.random() < WRITE_SHARE:  # an internal note: a write every web process must then see
            method, expected = "POST", 201
            url, body = f"/api/tickets/{rng.randint(*numbers)}/notes", json.dumps({"text": "load test note"})
        began = time.perf_counter()
        try:
            conn.request(method, url, body=body, headers={**headers, "Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            ok, errors = (ok + 1, errors) if response.status == expected else (ok, errors + 1)
        except (OSError, http.client.HTTPException):
            errors += 1
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        timings.append((time.perf_counter() - began) * 1000)
    results[seed_value] = (ok, errors, timings)


def main() -> None:
    settings = bench_settings()
    seeded, _moderator = seed(settings)
    numbers = (seeded.first_number, seeded.last_number)
    server = Gunicorn()
    print(f"gunicorn ({WORKERS} workers) answered /healthz {server.started_in:.1f}s after start", flush=True)
    try:
        token = login(server.port)
        stop = time.monotonic() + DURATION
        results: dict = {}
        threads = [
            threading.Thread(target=client_loop, args=(server.port, token, stop, i, results, numbers))
            for i in range(CLIENTS)
        ]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - began
        ok = sum(r[0] for r in results.values())
        errors = sum(r[1] for r in results.values())
        timings = [t for r in results.values() for t in r[2]]
        print(f"gunicorn {WORKERS} workers, {CLIENTS} clients, {elapsed:.1f}s, {TICKETS} tickets")
        print("load average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
        print(f"requests {ok + errors}  ok {ok}  errors {errors}  rps {(ok + errors) / elapsed:.1f}")
        print(
            f"latency p50 {percentile(timings, 0.5):.1f} ms  p95 {percentile(timings, 0.95):.1f} ms  "
            f"max {max(timings):.1f} ms"
        )
        rss = sorted(rss_mb(pid) for pid in server.worker_pids())
        print(f"web worker RSS after the run: {', '.join(f'{r:.0f}' for r in rss)} MB")
        print("result:", "PASS (0 errors)" if errors == 0 else f"FAIL ({errors} errors)")
    finally:
        server.stop()
        db_script("purge")
    return


if __name__ == "__main__":
    main()
