"""Shared by the API benchmarks: their own FerretDB with 10,000 tickets, users and tokens.

Run from the repository root, e.g. `.venv/bin/python bench/api_latency.py`.
"""

from __future__ import annotations

import datetime as dt
import os
import pathlib
import random
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import Settings, load_settings  # noqa: E402
from models import Skill, Ticket, TicketMessage, User, connect_db, ensure_all_indexes  # noqa: E402

DB_PORT = 27139
DB_DIR = ROOT / ".cache" / "bench-api-db"
TICKETS = int(os.environ.get("BENCH_TICKETS", "10000"))  # the goal is stated at 10,000
PASSWORD = "bench-password-123"
SKILLS = ("billing", "vpn", "postgres", "sso", "backup")
CATEGORIES = ("billing", "network", "database", "account")


def db_script(action: str) -> None:
    env = {**os.environ, "DB_DIR": str(DB_DIR), "DB_PORT": str(DB_PORT)}
    subprocess.run(["bash", str(ROOT / "scripts" / "db.sh"), action], env=env, check=True, capture_output=True)


def bench_env() -> dict[str, str]:
    return {
        "SECRET_KEY": "bench-secret-key-0123456789abcdef",
        "JWT_SECRET_KEY": "bench-jwt-secret-key-0123456789abcdef",
        "MONGO_URI": f"mongodb://127.0.0.1:{DB_PORT}/helpdesk_bench",
        "TRIAGE_PROVIDER": "local",
        "LOGIN_RATE_LIMIT": "1000 per minute",
    }


def bench_settings() -> Settings:
    return load_settings(environ=bench_env(), env_file=None)


def seed(settings: Settings) -> dict[str, User]:
    """A fresh database with an admin, five moderators and TICKETS tickets (one inbound message each)."""
    db_script("purge")
    db_script("start")
    connect_db(settings.mongo_uri)
    ensure_all_indexes()
    for name in SKILLS:
        Skill(name=name).save()
    people = {"admin": User(email="admin@example.test", role="admin")}
    for i, skill in enumerate(SKILLS):
        people[f"mod{i}"] = User(email=f"mod{i}@example.test", role="moderator", skills=[skill])
    for user in people.values():
        user.set_password(PASSWORD)
        user.save()
    moderators = [u for k, u in people.items() if k != "admin"]
    rng = random.Random(7)
    start = dt.datetime(2026, 1, 1)
    tickets, messages = [], []
    for number in range(1, TICKETS + 1):
        skill = rng.choice(SKILLS)
        assignee = rng.choice(moderators + [None])
        created = start + dt.timedelta(minutes=number * 7)
        message_id = f"<bench-{number}@customer.example>"
        tickets.append(
            Ticket(
                number=number,
                subject=f"Bench ticket {number} about {skill}",
                status=rng.choice(("new", "open", "pending", "resolved", "closed")),
                priority=rng.choice(("low", "medium", "high", "urgent")),
                category=rng.choice(CATEGORIES),
                required_skills=[skill],
                requester_email=f"customer{number % 500}@example.test",
                assignee=assignee,
                source_message_id=message_id,
                created_at=created,
                updated_at=created,
                summary="A summary.",
            ).to_mongo()
        )
        messages.append((number, message_id, created))
    inserted = Ticket._get_collection().insert_many(tickets).inserted_ids
    TicketMessage._get_collection().insert_many(
        [
            TicketMessage(
                ticket=ticket_id,
                ticket_number=number,
                kind="inbound",
                message_id=message_id,
                from_address="customer@example.test",
                subject="Bench",
                text="Hello " * 60,
                created_at=created,
            ).to_mongo()
            for ticket_id, (number, message_id, created) in zip(inserted, messages, strict=True)
        ]
    )
    return people


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
