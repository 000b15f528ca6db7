"""20 concurrent clients for 30 s against the app served by gunicorn: requests per second, errors.

Each client loops over GET /api/tickets (filtered), GET /api/tickets/<n> and GET /api/me with keep-alive;
one request in ten is a POST of an internal note instead.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time

from api_support import PASSWORD, ROOT, TICKETS, bench_env, bench_settings, db_script, percentile, seed

CLIENTS = 20
DURATION = 30.0
WORKERS = int(os.environ.get("BENCH_WORKERS", "4"))
WRITE_SHARE = 0.1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not come up")


def wait_for_workers(gunicorn: subprocess.Popen, count: int, timeout: float = 300.0) -> None:
    """Until `count` workers logged that they are ready (gunicorn.conf.py)."""
    deadline, ready = time.monotonic() + timeout, 0
    while ready < count:
        line = gunicorn.stderr.readline()
        if not line or time.monotonic() > deadline:
            raise RuntimeError("gunicorn workers did not get ready")
        if "worker ready" in line:
            ready += 1
            print("  " + line.strip().split("] ")[-1], flush=True)
    # keep draining stderr so gunicorn never blocks on a full pipe
    threading.Thread(target=lambda: [None for _ in gunicorn.stderr], daemon=True).start()


def login(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = json.dumps({"email": "admin@example.test", "password": PASSWORD})
    conn.request("POST", "/api/auth/login", body=body, headers={"Content-Type": "application/json"})
    return json.loads(conn.getresponse().read())["access_token"]


def client_loop(port: int, token: str, stop: float, seed_value: int, results: dict) -> None:
    rng = random.Random(seed_value)
    headers = {"Authorization": f"Bearer {token}"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    ok = errors = 0
    timings = []
    while time.monotonic() < stop:
        method, body, expected = "GET", None, 200
        url = rng.choice(["/api/tickets?status=open&per_page=25", f"/api/tickets/{rng.randint(1, TICKETS)}", "/api/me"])
        if rng.random() < WRITE_SHARE:  # an internal note: a write every web process must then see
            method, expected = "POST", 201
            url, body = f"/api/tickets/{rng.randint(1, TICKETS)}/notes", json.dumps({"text": "load test note"})
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
    seed(settings)
    port = free_port()
    env = {**os.environ, **bench_env()}
    began = time.monotonic()
    gunicorn = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            "-c",
            str(ROOT / "gunicorn.conf.py"),
            "-w",
            str(WORKERS),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "info",
            "webadmin:create_app()",
        ],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_workers(gunicorn, WORKERS)
        print(f"{WORKERS} workers ready {time.monotonic() - began:.1f}s after start", flush=True)
        wait_until_up(port)
        token = login(port)
        stop = time.monotonic() + DURATION
        results: dict = {}
        threads = [threading.Thread(target=client_loop, args=(port, token, stop, i, results)) for i in range(CLIENTS)]
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
        print(f"requests {ok + errors}  ok {ok}  errors {errors}  rps {(ok + errors) / elapsed:.1f}")
        print(f"latency p50 {percentile(timings, 0.5):.1f} ms  p95 {percentile(timings, 0.95):.1f} ms")
    finally:
        gunicorn.terminate()
        gunicorn.wait(timeout=15)
        db_script("purge")
    sys.exit(0)


if __name__ == "__main__":
    main()
