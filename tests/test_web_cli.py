"""`flask --app webadmin ...` as a user runs it: help without a database, one line and exit code 2 for
a missing setting or a database that is down, and `db init` creating the indexes."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import time

from pymongo import MongoClient

ROOT = pathlib.Path(__file__).resolve().parents[1]
FLASK = [sys.executable, "-m", "flask", "--app", "webadmin"]
SECRETS = {
    "SECRET_KEY": "cli-test-secret-0123456789abcdefghij",
    "JWT_SECRET_KEY": "cli-test-jwt-0123456789abcdefghijkl",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again: nothing listens there


def _flask(tmp_path: pathlib.Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run the CLI from an empty folder (no .env) with only `env` set."""
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), "HOME": str(tmp_path), **env}
    began = time.monotonic()
    result = subprocess.run([*FLASK, *args], cwd=tmp_path, env=clean, capture_output=True, text=True, timeout=60)
    return result, time.monotonic() - began


def _error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_help_answers_without_a_database(tmp_path: pathlib.Path) -> None:
    down = f"mongodb://127.0.0.1:{_free_port()}/helpdesk"
    result, _ = _flask(tmp_path, "--help", MONGO_URI=down, **SECRETS)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    for command in ("users", "skills", "db", "demo", "triage", "mail"):
        assert f"  {command} " in result.stdout
    mail, _ = _flask(tmp_path, "mail", "--help", MONGO_URI=down, **SECRETS)
    # the mailbox's sign-in only (issue 12): mail intake is the daemon's (run_daemon.py)
    listed = [line.split()[0] for line in mail.stdout.split("Commands:")[1].splitlines() if line.strip()]
    assert mail.returncode == 0 and listed == ["authorize", "mailboxes"]
    users, _ = _flask(tmp_path, "users", "--help", MONGO_URI=down, **SECRETS)
    assert users.returncode == 0 and "create" in users.stdout and users.stderr == ""


def test_a_database_that_is_down_gives_one_line_and_exit_code_2_within_5_seconds(tmp_path: pathlib.Path) -> None:
    port = _free_port()
    uri = f"mongodb://127.0.0.1:{port}/helpdesk"
    _, startup = _flask(tmp_path, "users", "--help", MONGO_URI=uri, **SECRETS)  # Python and app start-up alone
    result, elapsed = _flask(tmp_path, "users", "list", MONGO_URI=uri, **SECRETS)
    assert result.returncode == 2
    [line] = _error_lines(result)
    assert f"database unreachable at 127.0.0.1:{port}" in line and "MONGO_URI" in line
    assert "Traceback" not in result.stderr
    # About 3 s on an idle machine; start-up itself slows down when the machine is busy, the wait must not.
    assert elapsed - startup < 3.0, f"took {elapsed:.1f}s, of which start-up {startup:.1f}s"


def test_a_missing_setting_gives_one_line_and_exit_code_2(tmp_path: pathlib.Path) -> None:
    result, _ = _flask(tmp_path, "users", "list", JWT_SECRET_KEY=SECRETS["JWT_SECRET_KEY"])
    assert result.returncode == 2
    [line] = _error_lines(result)
    assert "SECRET_KEY" in line and "Traceback" not in result.stderr
    helped, _ = _flask(tmp_path, "--help")  # the commands are still listed
    assert helped.returncode == 0 and "  users " in helped.stdout and "Traceback" not in helped.stderr


def test_db_init_creates_the_indexes(tmp_path: pathlib.Path, db_server: str) -> None:
    uri = db_server.rstrip("/") + "/helpdesk_cli_init"
    with MongoClient(uri) as client:
        client.drop_database("helpdesk_cli_init")
        result, _ = _flask(tmp_path, "db", "init", MONGO_URI=uri, **SECRETS)
        assert result.returncode == 0, result.stderr
        assert "indexes ready" in result.stdout
        indexes = client["helpdesk_cli_init"]["tickets"].index_information()
        assert "number_1" in indexes and any("text" in str(spec["key"]) for spec in indexes.values())
        client.drop_database("helpdesk_cli_init")
