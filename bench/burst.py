"""A burst of mail with the whole helpdesk running: how fast it is absorbed, and how the panel answers meanwhile.

Starts its own database and mail stack (bench/ingest_stack.py), gunicorn with gunicorn.conf.py (4 workers) and
run_daemon.py with the offline model, seeds an admin and moderators who cover the default skills, appends
BURST_EMAILS (default 3,000) emails to the mailbox over IMAP, and reports:
- intake: tickets created per second, and when the last one was created;
- when every ticket was triaged, routed (assigned or escalated) and its assignee's notification queued;
- when every acknowledgement was sent;
- API p50/p95/max over HTTP (bearer token) during the burst and once the daemon is idle (every email it queued,
  notifications included, sent), for
  GET /api/tickets, ?status=open, ?q=..., /api/tickets/<n> and the admin's /dashboard.

Run: .venv/bin/python bench/burst.py   (BURST_EMAILS=300 for a quick check). Prints one JSON object.
"""

from __future__ import annotations

import json
import os
import pathlib
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import ingest_stack  # noqa: E402
from cpu import cpu_by_program, cpu_used  # noqa: E402
from ingest_stack import (  # noqa: E402
    ROOT,
    append_all,
    bench_settings,
    percentile,
    script,
    settings_env,
    synthetic_email,
)

EMAILS = int(os.environ.get("BURST_EMAILS", "3000"))
WEB_PORT = 22100
PASSWORD = "bench-password-123"
STAFF = (
    ("admin@example.test", "admin", ()),
    ("billing@example.test", "moderator", ("payments", "refunds", "accounts", "logistics")),
    ("network@example.test", "moderator", ("networking", "vpn", "sso", "accounts", "security", "email")),
    ("data@example.test", "moderator", ("database", "postgres", "backup", "integrations", "hardware")),
    ("general@example.test", "moderator", ("troubleshooting", "accounts", "email", "integrations")),
)
# the admin's dashboard: the team's figures, which read every open ticket when computed
ENDPOINTS = ("/api/tickets", "/api/tickets?status=open", "/api/tickets?q=invoice", "/api/tickets/{n}", "/dashboard")


def own_stack(offset: int, name: str) -> None:
    """Move the benchmark's servers to their own ports and folders (ingest_stack's + `offset`), so this script can
    run while another benchmark on the shared stack does."""
    ingest_stack.DB_PORT += offset
    for key in ingest_stack.MAIL_PORTS:
        ingest_stack.MAIL_PORTS[key] += offset
    ingest_stack.MAIL_DIR = pathlib.Path(f"/tmp/helpdesk-bench-{name}-mail")
    ingest_stack.DB_DIR = ROOT / ".cache" / f"bench-{name}-db"


def _wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port} after {timeout} s")


def _request(url: str, token: str | None = None, data: dict | None = None) -> tuple[float, int, bytes]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = json.dumps(data).encode() if data is not None else None
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers), timeout=30) as resp:
            payload, status = resp.read(), resp.status
    except urllib.error.HTTPError as exc:
        payload, status = exc.read(), exc.code
    return (time.perf_counter() - started) * 1000, status, payload


class Prober(threading.Thread):
    """Cycles through ENDPOINTS one request at a time until stopped; keeps every latency."""

    def __init__(self, base: str, token: str) -> None:
        super().__init__(daemon=True)
        self.base, self.token = base, token
        self.stop = threading.Event()
        self.latencies: dict[str, list[float]] = {e: [] for e in ENDPOINTS}
        self.errors = 0

    def run(self) -> None:
        rng = random.Random(1)
        while not self.stop.is_set():
            for endpoint in ENDPOINTS:
                path = endpoint.format(n=rng.randint(1, max(1, EMAILS // 2)))
                ms, status, _ = _request(self.base + path, self.token)
                if status >= 500 or (status >= 400 and "{n}" not in endpoint):
                    self.errors += 1
                self.latencies[endpoint].append(ms)
                time.sleep(0.05)


def _figures(latencies: dict[str, list[float]]) -> dict:
    return {
        endpoint: {
            "n": len(values),
            "p50_ms": round(percentile(values, 0.5), 1),
            "p95_ms": round(percentile(values, 0.95), 1),
            "max_ms": round(max(values), 1),
        }
        for endpoint, values in latencies.items()
        if values
    }


def _seed_staff() -> None:
    from models import User
    from triage.taxonomy import ensure_default_taxonomy

    ensure_default_taxonomy()
    for email, role, skills in STAFF:
        user = User(email=email, role=role, skills=list(skills))
        user.set_password(PASSWORD)
        user.save()


def main() -> None:
    from models import connect_db, ensure_all_indexes

    own_stack(300, "burst")
    print(f"load average before: {os.getloadavg()}", flush=True)
    script("db.sh", "purge")
    script("mail.sh", "purge")
    script("db.sh", "start")
    script("mail.sh", "start")
    settings = bench_settings(app_url=f"http://127.0.0.1:{WEB_PORT}", ack_limit_per_hour=100000)
    connect_db(settings.mongo_uri)
    ensure_all_indexes()
    _seed_staff()
    db = __import__("mongoengine").get_db()
    env = settings_env(settings)
    logs = ROOT / ".cache" / "bench-burst-logs"
    logs.mkdir(parents=True, exist_ok=True)
    web = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/gunicorn"),
            "-c",
            "gunicorn.conf.py",
            "-b",
            f"127.0.0.1:{WEB_PORT}",
            "webadmin:create_app()",
        ],
        cwd=ROOT,
        env=env,
        stdout=open(logs / "web.log", "w"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    daemon = None
    try:
        started = time.monotonic()
        _wait_port(WEB_PORT, 120)
        base = f"http://127.0.0.1:{WEB_PORT}"
        while _request(f"{base}/healthz")[1] >= 500 and time.monotonic() - started < 120:
            time.sleep(0.2)
        web_ready = time.monotonic() - started
        _, status, payload = _request(
            f"{base}/api/auth/login", data={"email": "admin@example.test", "password": PASSWORD}
        )
        if status != 200:
            raise SystemExit(f"login failed: {status} {payload[:200]!r}")
        token = json.loads(payload)["access_token"]
        daemon = subprocess.Popen(
            [sys.executable, "run_daemon.py"],
            cwd=ROOT,
            env=env,
            stdout=open(logs / "daemon.log", "w"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        raws = [synthetic_email(i).as_bytes() for i in range(EMAILS)]
        time.sleep(2)  # the daemon logs in and goes idle
        during = Prober(base, token)
        during.start()
        cpu_before = cpu_by_program()
        t0 = time.monotonic()
        append_all(settings, raws)
        appended = time.monotonic() - t0
        marks: dict[str, float | None] = {
            "created": None,
            "triaged": None,
            "routed": None,
            "notified": None,
            "acked": None,
        }
        deadline = t0 + 900
        while time.monotonic() < deadline and None in marks.values():
            now = time.monotonic() - t0
            tickets = db.tickets
            counts = {
                "created": tickets.count_documents({}),
                "triaged": tickets.count_documents({"triage.state": {"$in": ["done", "review"]}}),
                "routed": tickets.count_documents({"$or": [{"assignee": {"$ne": None}}, {"escalated": True}]}),
                "acked": db.outbox.count_documents({"kind": "ack", "state": "sent"}),
            }
            assigned = tickets.count_documents({"assignee": {"$ne": None}})
            notified = len(db.outbox.distinct("ticket_number", {"kind": "notification"}))
            for name, value in counts.items():
                if marks[name] is None and value >= EMAILS:
                    marks[name] = round(now, 1)
            if marks["notified"] is None and marks["routed"] is not None and notified >= assigned:
                marks["notified"] = round(now, 1)
            time.sleep(0.5)
        load_during = os.getloadavg()
        cpu_during = cpu_used(cpu_before, cpu_by_program())
        # "after the burst" is once the daemon is idle: every email it queued (notifications too) has gone out
        while time.monotonic() < deadline and db.outbox.count_documents({"state": {"$in": ["queued", "sending"]}}):
            time.sleep(0.5)
        drained = round(time.monotonic() - t0, 1)
        during.stop.set()
        during.join()
        after = Prober(base, token)
        after.start()
        time.sleep(15)
        after.stop.set()
        after.join()
        last_arrival = appended
        report = {
            "emails": EMAILS,
            "web_ready_s": round(web_ready, 1),
            "append_s": round(appended, 1),
            "seconds_from_first_append": marks,
            "outbox_drained_s": drained,
            "after_last_arrival_s": {
                k: (round(v - last_arrival, 1) if v is not None else None) for k, v in marks.items()
            },
            "intake_per_s": round(EMAILS / marks["created"], 1) if marks["created"] else None,
            "api_during_burst": _figures(during.latencies),
            "api_after_burst": _figures(after.latencies),
            "api_errors": during.errors + after.errors,
            "cpu_seconds_during_burst": cpu_during,
            "rss_mb": {"daemon": _rss_mb(daemon.pid), "web_workers": _worker_rss_mb(web.pid)},
            "load_average_at_end_of_burst": [round(x, 2) for x in load_during],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        }
        print(json.dumps(report, indent=2))
    finally:
        for proc in (daemon, web):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
        script("db.sh", "purge")
        script("mail.sh", "purge")


def _rss_mb(pid: int) -> float | None:
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def _worker_rss_mb(master: int) -> list[float | None]:
    children = pathlib.Path(f"/proc/{master}/task/{master}/children")
    pids = [int(p) for p in children.read_text().split()] if children.exists() else []
    return [_rss_mb(pid) for pid in pids]


if __name__ == "__main__":
    main()
