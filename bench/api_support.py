"""Shared by the HTTP benchmarks: their own FerretDB seeded in bulk with BENCH_TICKETS tickets (bench/seed.py),
the app served by gunicorn (gunicorn.conf.py), signed-in clients, and resident memory from /proc.

Run from the repository root, e.g. `BENCH_TICKETS=100000 .venv/bin/python bench/api_latency.py`.
Everything goes through HTTP, so the benchmarks do not depend on how the app builds its queries.
"""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import time

import requests

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from seed import Seeded, seed_tickets  # noqa: E402

from config import Settings, load_settings  # noqa: E402
from models import User, connect_db, disconnect_db, ensure_all_indexes  # noqa: E402

DB_PORT = 27139
DB_DIR = ROOT / ".cache" / "bench-api-db"
TICKETS = int(os.environ.get("BENCH_TICKETS", "100000"))  # the goals are stated at 100,000; 1,000,000 reported
WORKERS = int(os.environ.get("BENCH_WORKERS", "4"))
REUSE_DB = os.environ.get("BENCH_REUSE_DB") == "1"  # keep the seeded database between runs (and reuse it)
PASSWORD = "bench-password-123"
ADMIN = "admin@example.test"


def db_script(action: str, keep: bool = REUSE_DB) -> None:
    """scripts/db.sh `action` for the benchmark's database; "purge" is skipped while `keep`."""
    if action == "purge" and keep:
        return
    env = {**os.environ, "DB_DIR": str(DB_DIR), "DB_PORT": str(DB_PORT)}
    subprocess.run(["bash", str(ROOT / "scripts" / "db.sh"), action], env=env, check=True, capture_output=True)


def bench_env() -> dict[str, str]:
    return {
        "SECRET_KEY": "bench-secret-key-0123456789abcdef",
        "JWT_SECRET_KEY": "bench-jwt-secret-key-0123456789abcdef",
        "MONGO_URI": f"mongodb://127.0.0.1:{DB_PORT}/helpdesk_bench",
        "TRIAGE_PROVIDER": "local",
        "LOGIN_RATE_LIMIT": "10000 per minute",
    }


def bench_settings() -> Settings:
    return load_settings(environ=bench_env(), env_file=None)


def seed(settings: Settings, count: int = TICKETS) -> tuple[Seeded, str]:
    """A fresh database with `count` tickets, an admin and a moderator who can sign in.
    Returns what was seeded and the moderator's email. With BENCH_REUSE_DB=1 a database left by an earlier
    run with the same number of tickets is used as it is (and kept)."""
    db_script("purge")
    db_script("start")
    connect_db(settings.mongo_uri)
    ensure_all_indexes()
    reused = reuse_seeded(count) if REUSE_DB else None
    if reused is not None:
        print(f"reusing the database seeded earlier with {count} tickets", flush=True)
        return reused, reused.moderator_emails[0]
    if REUSE_DB:  # a kept database that does not match: start from an empty one (seeding on top duplicates users)
        disconnect_db()
        db_script("purge", keep=False)
        db_script("start")
        connect_db(settings.mongo_uri)
        ensure_all_indexes()
    began = time.perf_counter()
    seeded = seed_tickets(User._get_db(), count, defer_indexes=True, progress=count >= 100_000)
    print(f"seeded {count} tickets (with messages, acks, requesters) in {time.perf_counter() - began:.1f}s", flush=True)
    admin = User(email=ADMIN, role="admin", name="Admin")
    admin.set_password(PASSWORD)
    admin.save()
    moderator = User.objects.get(email=seeded.moderator_emails[0])
    moderator.set_password(PASSWORD)
    moderator.save()
    return seeded, moderator.email


def reuse_seeded(count: int) -> Seeded | None:
    """What an earlier run seeded, when the database holds exactly `count` tickets and its sign-ins."""
    from models import Ticket

    # exact: an unfiltered .count() is the server's estimate (1,000,272 for 1,000,000 tickets, docs/db-compat.md)
    if Ticket._get_collection().count_documents({}) != count or User.objects(email=ADMIN).first() is None:
        return None
    numbers = Ticket.objects.order_by("number").scalar("number")
    first, last = numbers.first(), Ticket.objects.order_by("-number").scalar("number").first()
    moderators = User.objects(email__endswith="@staff.example.test", role="moderator").order_by("email")
    emails = [m.email for m in moderators]
    return Seeded(tickets=count, first_number=first, last_number=last, moderator_emails=emails)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """`gunicorn -c gunicorn.conf.py 'webadmin:create_app()'` with the bench's settings, as in production."""

    def __init__(self, workers: int = WORKERS, timeout: float = 600.0) -> None:
        self.port = free_port()
        self.log = (DB_DIR.parent / "bench-gunicorn.log").open("w")
        command = [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            "-c",
            str(ROOT / "gunicorn.conf.py"),
            "-w",
            str(workers),
            "-b",
            f"127.0.0.1:{self.port}",
            "webadmin:create_app()",
        ]
        self.began = time.monotonic()
        self.process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **bench_env()}, stderr=self.log)
        self.url = f"http://127.0.0.1:{self.port}"
        self.started_in = self._wait_up(timeout)

    def _wait_up(self, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.process.returncode}): see {self.log.name}")
            try:
                if requests.get(self.url + "/healthz", timeout=5).status_code == 200:
                    return time.monotonic() - self.began
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer /healthz within {timeout:.0f}s: see {self.log.name}")

    def worker_pids(self) -> list[int]:
        return children(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def children(pid: int) -> list[int]:
    found = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def rss_mb(pid: int) -> float:
    """Resident set size of a process, from /proc/PID/status."""
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def api_token(url: str, email: str) -> str:
    response = requests.post(url + "/api/auth/login", json={"email": email, "password": PASSWORD}, timeout=30)
    response.raise_for_status()
    return response.json()["access_token"]


def page_session(url: str, email: str) -> requests.Session:
    """A browser-like session signed in through the login form (cookies)."""
    session = requests.Session()
    response = session.post(url + "/login", data={"email": email, "password": PASSWORD}, allow_redirects=False)
    if response.status_code != 302:
        raise RuntimeError(f"login as {email} failed: {response.status_code}")
    return session


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
