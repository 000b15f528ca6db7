"""`make dev`'s own start-up path (scripts/dev.sh) on a fresh state folder: it comes up, answers /healthz,
lets the demo admin log in, and Ctrl-C leaves nothing running. Also: a busy port stops it with one line."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from tests.conftest import ROOT, TEST_SLOT

pytestmark = pytest.mark.slow

# Ports of their own, away from the test servers (27019+slot, 11xxx-19xxx) and from a real `make dev`.
BASE = 20000 + 100 * TEST_SLOT
PORTS = {
    "WEB_PORT": BASE + 1,
    "DB_PORT": BASE + 2,
    "DB_PG_PORT": BASE + 3,
    "IMAP_PORT": BASE + 4,
    "IMAPS_PORT": BASE + 5,
    "LMTP_PORT": BASE + 6,
    "SMTP_IN_PORT": BASE + 7,
    "SINK_PORT": BASE + 8,
}


def _dev_env(dev_dir: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGO_", "IMAP_", "MAIL_"))}
    env.update({name: str(port) for name, port in PORTS.items()})
    env.update({"DEV_DIR": dev_dir, "MAIL_DIR": f"{dev_dir}-mail", "POLL_INTERVAL_SECONDS": "2"})
    return env


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _get_json(url: str, data: dict | None = None) -> dict:
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def test_make_dev_starts_serves_and_stops(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Under /tmp, not pytest's folder under /root: PostgreSQL runs as the `postgres` user and must reach it.
    dev_dir = f"/tmp/helpdesk-devtest-{TEST_SLOT}-{os.getpid()}"
    log = tmp_path_factory.mktemp("dev") / "dev.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            ["bash", str(ROOT / "scripts" / "dev.sh")],
            cwd=ROOT,
            env=_dev_env(dev_dir),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    web = f"http://127.0.0.1:{PORTS['WEB_PORT']}"
    try:
        deadline = time.monotonic() + 180
        while "Helpdesk running." not in log.read_text():
            assert proc.poll() is None, f"dev.sh exited early:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"dev.sh did not come up:\n{log.read_text()}"
            time.sleep(0.5)
        health = _get_json(f"{web}/healthz")
        assert health["database"] == "ok", health
        tokens = _get_json(f"{web}/api/auth/login", {"email": "admin@example.test", "password": "demo-password-123"})
        assert tokens["access_token"]
        # The demo emails become tickets the admin can see.
        deadline = time.monotonic() + 60
        while True:
            request = urllib.request.Request(
                f"{web}/api/tickets", headers={"Authorization": f"Bearer {tokens['access_token']}"}
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                listing = json.loads(response.read())
            items = listing.get("items", listing) if isinstance(listing, dict) else listing
            if len(items) >= 5:
                break
            assert time.monotonic() < deadline, f"demo tickets did not appear: {listing}"
            time.sleep(1)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends to the foreground group
        proc.wait(timeout=60)
        assert "stopped: nothing left running" in log.read_text()
        time.sleep(0.5)
        still_open = [name for name, port in PORTS.items() if _port_open(port)]
        assert still_open == [], f"ports still served after Ctrl-C: {still_open}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        _purge(dev_dir)


def _purge(dev_dir: str) -> None:
    """Whatever a failed run left: its database, its mail stack, its folders."""
    env = {**os.environ, **{name: str(port) for name, port in PORTS.items()}}
    subprocess.run(["bash", str(ROOT / "scripts" / "db.sh"), "purge"], env={**env, "DB_DIR": f"{dev_dir}/db"})
    subprocess.run(["bash", str(ROOT / "scripts" / "mail.sh"), "purge"], env={**env, "MAIL_DIR": f"{dev_dir}-mail"})
    subprocess.run(["rm", "-rf", dev_dir, f"{dev_dir}-mail"], check=False)


def test_make_dev_names_a_busy_port() -> None:
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", PORTS["IMAP_PORT"]))
        blocker.listen()
        result = subprocess.run(
            ["bash", str(ROOT / "scripts" / "dev.sh")],
            cwd=ROOT,
            env=_dev_env(f"/tmp/helpdesk-devtest-busy-{TEST_SLOT}"),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert f"port {PORTS['IMAP_PORT']}" in lines[0] and "IMAP_PORT" in lines[0]
