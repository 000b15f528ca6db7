"""run_daemon.py and the mailbox loop as a user runs them: --once, SIGTERM, IMAP restart, the CLI."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import pytest

from config import Settings, to_environ
from daemon.poller import run_mailbox_loop
from models import MailboxCursor, QuarantinedEmail, Ticket
from tests.conftest import ROOT, TEST_DB_PORT, TEST_SLOT, _script, make_settings
from tests.daemon_support import mail_script, raw_email
from tests.support import MailStack, make_email


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    return {**os.environ, **to_environ(settings), "IMAP_IDLE_SECONDS": "0.5", **extra}


def _wait(predicate, timeout: float = 20.0) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_run_daemon_once_processes_the_mailbox_and_exits(settings: Settings, mail: MailStack) -> None:
    mail.deliver(raw_email(subject="Laptop broken"))
    mail.deliver(b"Subject: no sender\r\n\r\nbody\r\n")
    result = subprocess.run(
        [sys.executable, "run_daemon.py", "--once"], cwd=ROOT, env=_env(settings), capture_output=True, timeout=120
    )
    log = result.stderr.decode()
    assert result.returncode == 0, log
    ticket = Ticket.objects.get()
    assert f"created #{ticket.number}" in log and "quarantined: no sender" in log
    assert QuarantinedEmail.objects.count() == 1
    assert mail.wait_for_sink(1)[0]["Subject"] == f"[#{ticket.number}] Laptop broken"


def test_bad_setting_exits_2_with_one_line(settings: Settings) -> None:
    result = subprocess.run(
        [sys.executable, "run_daemon.py", "--once"],
        cwd=ROOT,
        env=_env(settings, IMAP_PORT="not-a-port"),
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.decode().strip().count("\n") == 0 and "IMAP_PORT" in result.stderr.decode()


def test_running_daemon_acknowledges_pushed_mail_and_stops_on_sigterm(settings: Settings, mail: MailStack) -> None:
    process = subprocess.Popen(
        [sys.executable, "run_daemon.py"], cwd=ROOT, env=_env(settings), stderr=subprocess.PIPE, text=True
    )
    try:
        mail.send(make_email(subject="Wifi down"))
        assert mail.wait_for_sink(1, timeout=15)[0]["Subject"].endswith("Wifi down")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
    log = process.stderr.read() if process.stderr else ""
    assert "stopped" in log
    assert Ticket.objects.count() == 1


def test_mailbox_loop_survives_an_imap_server_restart(settings: Settings, mail: MailStack) -> None:
    stop = threading.Event()
    loop = threading.Thread(target=run_mailbox_loop, args=(settings, stop), daemon=True)
    loop.start()
    try:
        mail.send(make_email(subject="before restart"))
        assert _wait(lambda: Ticket.objects.count() == 1)
        mail_script(mail, "stop")
        time.sleep(0.5)
        mail_script(mail, "start")
        mail.send(make_email(subject="after restart"))
        assert _wait(lambda: Ticket.objects.count() == 2, timeout=40)
    finally:
        stop.set()
        loop.join(timeout=20)
    assert not loop.is_alive()
    assert sorted(t.subject for t in Ticket.objects) == ["after restart", "before restart"]
    assert len(mail.wait_for_sink(2)) == 2


def test_mailbox_loop_survives_a_database_outage(settings: Settings, mail: MailStack) -> None:
    """FerretDB stops and comes back: mail that arrived meanwhile is ingested, and the loop is still running."""
    if os.environ.get("TEST_MONGO_URI"):
        pytest.skip("restarts the embedded FerretDB; TEST_MONGO_URI points elsewhere")
    db_env = {"DB_DIR": str(ROOT / ".cache" / f"test-db-{TEST_SLOT}"), "DB_PORT": str(TEST_DB_PORT)}
    stop = threading.Event()
    loop = threading.Thread(target=run_mailbox_loop, args=(settings, stop), daemon=True)
    loop.start()
    try:
        mail.send(make_email(subject="before the outage"))
        assert _wait(lambda: Ticket.objects.count() == 1)
        _script("db.sh", "stop", db_env)
        mail.send(make_email(subject="during the outage"))
        time.sleep(3)  # the loop meets the outage (lease renewal, ledger, cursor) and backs off
        _script("db.sh", "start", db_env)
        assert _wait(lambda: Ticket.objects.count() == 2, timeout=60)
        assert loop.is_alive()
    finally:
        stop.set()
        loop.join(timeout=30)
        _script("db.sh", "start", db_env)  # idempotent: leave the server up for the next tests
    assert sorted(t.subject for t in Ticket.objects) == ["before the outage", "during the outage"]


def test_mailbox_loop_records_a_refused_login_as_the_poll_error(settings: Settings, mail: MailStack) -> None:
    """Regression: the loop logged a failed login and retried, but never recorded it for /healthz."""
    wrong = make_settings(settings.mongo_uri, mail, imap_password="Wrong-Secret-123")
    stop = threading.Event()
    loop = threading.Thread(target=run_mailbox_loop, args=(wrong, stop), daemon=True)
    loop.start()
    try:
        assert _wait(lambda: MailboxCursor.objects(last_error__ne=None).count() == 1)
    finally:
        stop.set()
        loop.join(timeout=20)
    assert not loop.is_alive()
    cursor = MailboxCursor.objects.get()
    assert "LoginError" in cursor.last_error and "Wrong-Secret-123" not in cursor.last_error
    assert cursor.last_poll_at is None


def test_run_daemon_ingests_a_file_and_reingests_quarantine(
    settings: Settings, mail: MailStack, tmp_path: pathlib.Path
) -> None:
    def run(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "run_daemon.py", "--log-level", "WARNING", *args]
        return subprocess.run(command, cwd=ROOT, env=_env(settings), capture_output=True, text=True, timeout=120)

    good, bad = tmp_path / "good.eml", tmp_path / "bad.eml"
    good.write_bytes(raw_email(subject="From the CLI"))
    bad.write_bytes(b"Subject: nobody\r\n\r\nx\r\n")
    result = run("ingest", str(good))
    assert result.returncode == 0 and result.stdout.startswith("created #"), result.stderr
    assert mail.wait_for_sink(1)[0]["Subject"].endswith("From the CLI")
    result = run("ingest", str(bad))
    assert result.stdout.startswith("quarantined: no sender")
    record = QuarantinedEmail.objects.get()
    result = run("quarantine-reingest", str(record.id))
    assert result.returncode == 0 and result.stdout.startswith("quarantined: no sender")
    assert QuarantinedEmail.objects.count() == 1 and QuarantinedEmail.objects.get().reingested_at
    result = run("quarantine-reingest", "nope")
    assert result.returncode == 1 and "no quarantined email" in result.stderr
    result = run("ingest", str(tmp_path / "missing.eml"))
    assert result.returncode == 2 and "no such file" in result.stderr


def test_new_tickets_bring_the_triage_job_forward() -> None:
    """A job on a long interval runs at once when brought forward (the daemon does this when intake has
    created tickets), not at its next tick; a second call while it runs does not start it twice."""
    from apscheduler.schedulers.background import BackgroundScheduler

    from daemon.scheduler import run_soon

    ran, release, runs = threading.Event(), threading.Event(), []

    def job() -> None:
        runs.append(1)
        ran.set()
        release.wait(5)

    scheduler = BackgroundScheduler(job_defaults={"max_instances": 1, "coalesce": True}, timezone="UTC")
    scheduler.add_job(job, "interval", seconds=3600, id="triage")
    scheduler.start()
    try:
        assert not ran.wait(0.5)  # an hour to its first tick
        run_soon(scheduler, "triage")
        assert ran.wait(5)
        run_soon(scheduler, "triage")  # while it runs
        time.sleep(0.5)
        assert len(runs) == 1
    finally:
        release.set()
        scheduler.shutdown(wait=True)
