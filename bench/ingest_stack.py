"""Servers and fixtures shared by the ingestion benchmarks: their own FerretDB and mail stack.

They use their own ports and folders, so a dev stack or a test run is not disturbed; BENCH_SLOT=N (0-9)
shifts them so that several benchmarks can run on one machine at once.
Run from the repository root: `.venv/bin/python bench/ingest_throughput.py`.
"""

from __future__ import annotations

import email.utils
import os
import pathlib
import subprocess
import sys
import time
from email.message import EmailMessage

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import Settings, load_settings, to_environ  # noqa: E402
from models import connect_db, ensure_all_indexes  # noqa: E402

SLOT = int(os.environ.get("BENCH_SLOT", "0"))
DB_PORT = 27129 + SLOT
_BASE_MAIL_PORTS = {
    "IMAP_PORT": 21143,
    "IMAPS_PORT": 21993,
    "LMTP_PORT": 21024,
    "SMTP_IN_PORT": 21026,
    "SINK_PORT": 21025,
}
MAIL_PORTS = {name: port + 100 * SLOT for name, port in _BASE_MAIL_PORTS.items()}
MAIL_DIR = pathlib.Path("/tmp/helpdesk-bench-mail" + (f"-{SLOT}" if SLOT else ""))
DB_DIR = ROOT / ".cache" / ("bench-db" + (f"-{SLOT}" if SLOT else ""))
SUPPORT = "support@example.test"
# BENCH_MAILBOXES=2: the emails are split across the settings' mailbox and a SupportMailbox kept in the database
# (billing@, read as Dovecot's user moderator@), which the daemon reads at the same time in its own loop
MAILBOXES = int(os.environ.get("BENCH_MAILBOXES", "1"))
SECOND = "billing@example.test"
SECOND_LOGIN = "moderator@example.test"
MAILBOX_KEY = "YmVuY2gtbWFpbGJveC1rZXktMDEyMzQ1Njc4OWFiY2Q="  # Fernet; a benchmark key, no secret


def script(name: str, action: str) -> None:
    env = {
        **os.environ,
        "DB_DIR": str(DB_DIR),
        "DB_PORT": str(DB_PORT),
        "MAIL_DIR": str(MAIL_DIR),
        "PYTHON": sys.executable,
        **{k: str(v) for k, v in MAIL_PORTS.items()},
    }
    subprocess.run(["bash", str(ROOT / "scripts" / name), action], env=env, check=True, capture_output=True)


def start_stack(fresh: bool = True) -> Settings:
    """Start (fresh: purge first) the benchmark's database and mail servers; return matching settings."""
    if fresh:
        script("db.sh", "purge")
        script("mail.sh", "purge")
    script("db.sh", "start")
    script("mail.sh", "start")
    settings = bench_settings()
    connect_db(settings.mongo_uri)
    ensure_all_indexes()
    return settings


def seed_history(count: int) -> None:
    """`count` tickets of history (20% still open, the rest resolved or closed; each with its first message
    and a sent acknowledgement; a requester per 20 tickets): what a helpdesk has after months, which the
    daemon's jobs must not wade through. Seeded in bulk by bench/seed.py."""
    if count <= 0:
        return
    from seed import seed_tickets

    from models import Ticket

    seed_tickets(Ticket._get_db(), count, defer_indexes=True, progress=count >= 100_000)


def stop_stack() -> None:
    script("db.sh", "purge")
    script("mail.sh", "purge")


def bench_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "secret_key": "bench-secret-key-0123456789-abcdefgh",
        "jwt_secret_key": "bench-jwt-secret-key-0123456789-abcd",
        "mongo_uri": f"mongodb://127.0.0.1:{DB_PORT}/helpdesk_bench",
        "imap_port": MAIL_PORTS["IMAP_PORT"],
        "imap_password": "password",
        "imap_security": "none",
        "mail_port": MAIL_PORTS["SINK_PORT"],
        "triage_provider": "local",
        "ack_limit_per_hour": 1000,
        "ack_limit_total_per_hour": 1_000_000,  # the backscatter cap would stop a benchmark's acknowledgements
        "model_dir": str(ROOT / ".cache" / "bench-triage-model"),
        "mailbox_secret_key": MAILBOX_KEY,
    }
    values.update(overrides)
    return load_settings(environ={}, env_file=None, **values)


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes run_daemon.py load these settings."""
    return {**os.environ, **to_environ(settings)}


def synthetic_email(index: int, sender: str | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender or f"Customer {index} <customer{index}@example.org>"
    message["To"] = SUPPORT
    message["Subject"] = f"Problem report {index}: the invoice export fails"
    message["Message-ID"] = f"<bench-{index}-{time.time_ns()}@example.org>"
    message["Date"] = email.utils.formatdate()
    body = (
        f"Hello support,\n\nsince this morning the export of invoice {index} fails with error 0x{index:04x}.\n"
        "I tried again after a restart and it still fails. Could you please have a look?\n\n"
        "Thanks,\nA customer\n"
    )
    message.set_content(body * 3)
    return message


def append_all(settings: Settings, raws: list[bytes], folder: str = "INBOX") -> None:
    """Put messages into the mailbox quickly (IMAP APPEND), as delivered mail would be."""
    from daemon.mailbox import connect

    with connect(settings) as client:
        for raw in raws:
            client.append(folder, raw)


def add_second_mailbox(settings: Settings) -> Settings | None:
    """With BENCH_MAILBOXES=2: store the second support mailbox (enabled) and return its settings; else None."""
    if MAILBOXES < 2:
        return None
    from models.mailboxes import SupportMailbox

    mailbox = SupportMailbox(
        address=SECOND,
        name="Billing",
        imap_host=settings.imap_host,
        imap_port=settings.imap_port,
        imap_security="none",
        imap_user=SECOND_LOGIN,
    )
    mailbox.set_secret("password", MAILBOX_KEY)
    mailbox.save()
    return mailbox.settings_for(settings, MAILBOX_KEY)


def append_split(settings: Settings, second: Settings | None, raws: list[bytes]) -> None:
    """`append_all`, every other email into the second mailbox when there is one."""
    if second is None:
        append_all(settings, raws)
        return
    append_all(settings, raws[0::2])
    append_all(second, raws[1::2])


def sink_files() -> list[pathlib.Path]:
    return sorted((MAIL_DIR / "data" / "sink" / "new").glob("*"))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]
