"""The moderator queue's saved filters at scale: each view's page (counts, list, rendering) through the Flask app
in-process, as an admin and as a moderator, on a database seeded by bench/seed.py.

    .venv/bin/python bench/queue_views.py MONGO_URI [N]     e.g. mongodb://127.0.0.1:27244/helpdesk 100000

Seeds N tickets (default 100,000) only when the database has none; 1% of the open ones are made overdue and
unanswered (the SLA job's mark), as a live helpdesk has a few. Prints p50/p95 per view and the load average.
"""

from __future__ import annotations

import os
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from seed import seed_tickets  # noqa: E402

from config import load_settings  # noqa: E402
from models import Ticket, User, connect_db, ensure_all_indexes  # noqa: E402
from webadmin import create_app  # noqa: E402

PASSWORD = "bench-password-123"
VIEWS = ("all", "mine", "unassigned", "overdue", "escalated", "waiting")
ROUNDS = 15


def prepare(uri: str, count: int) -> tuple[str, str]:
    connect_db(uri)
    ensure_all_indexes()
    if Ticket.objects.first() is None:
        seed_tickets(User._get_db(), count, defer_indexes=True, progress=True)
        open_ids = [t.id for t in Ticket.objects(status="open").only("id")[: count // 500]]
        Ticket.objects(id__in=open_ids).update(unset__first_response_at=True, set__sla_breached=True)
    admin = User.objects(email="bench-admin@example.test").first() or User(
        email="bench-admin@example.test", role="admin"
    )
    moderator = User.objects(role="moderator").order_by("email").first()
    for user in (admin, moderator):
        user.set_password(PASSWORD)
        user.save()
    return admin.email, moderator.email


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit("usage: bench/queue_views.py MONGO_URI [N]")
    uri, count = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    people = prepare(uri, count)
    settings = load_settings(
        environ={
            "SECRET_KEY": "bench-secret-key-0123456789abcdef",
            "JWT_SECRET_KEY": "bench-jwt-secret-key-0123456789abcdef",
            "MONGO_URI": uri,
            "LOGIN_RATE_LIMIT": "10000 per minute",
        },
        env_file=None,
    )
    app = create_app(settings)
    print(f"{Ticket._get_collection().count_documents({})} tickets; load average before {os.getloadavg()}")
    for email in people:
        client = app.test_client()
        assert client.post("/login", data={"email": email, "password": PASSWORD}).status_code == 302
        for view in VIEWS:
            times = []
            for _ in range(ROUNDS):
                began = time.perf_counter()
                assert client.get(f"/queue?view={view}").status_code == 200
                times.append((time.perf_counter() - began) * 1000)
            times.sort()
            p95 = times[int(len(times) * 0.95) - 1]
            print(f"{email:40} /queue?view={view:10} p50 {statistics.median(times):6.0f} ms  p95 {p95:6.0f} ms")
    print(f"load average after {os.getloadavg()}")


if __name__ == "__main__":
    main()
