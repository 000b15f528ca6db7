"""Helpers for the daemon tests: ready-made emails, a poller pass, and mail-stack restarts."""

from __future__ import annotations

import email.utils
import os
import pathlib
import subprocess
import time
from email.message import EmailMessage

from tests.support import SUPPORT, MailStack, make_email

ROOT = pathlib.Path(__file__).resolve().parent.parent


def raw_email(**kwargs: str) -> bytes:
    return bytes(make_email(**kwargs))


def reply_to(original: EmailMessage | bytes, body: str = "Thanks, more details here.", **kwargs: str) -> bytes:
    """A customer's reply to a message (In-Reply-To and References set)."""
    parent = email.message_from_bytes(original) if isinstance(original, bytes) else original
    parent_id = parent["Message-ID"]
    references = f"{parent.get('References', '')} {parent_id}".strip()
    fields = {"subject": "Re: " + str(parent["Subject"]), "body": body, "In_Reply_To": parent_id}
    fields.update(kwargs)
    return bytes(make_email(References=references, **fields))


def mail_script(stack: MailStack, action: str) -> None:
    """Run scripts/mail.sh for this test slot's stack (e.g. "stop" then "start" = a server restart)."""
    env = {
        **os.environ,
        "MAIL_DIR": str(stack.directory),
        "IMAP_PORT": str(stack.imap_port),
        "IMAPS_PORT": str(stack.imaps_port),
        "SMTP_IN_PORT": str(stack.smtp_in_port),
        "SINK_PORT": str(stack.sink_port),
        "LMTP_PORT": str(stack.smtp_in_port - 2),
        "PYTHON": str(ROOT / ".venv" / "bin" / "python"),
    }
    subprocess.run(["bash", str(ROOT / "scripts" / "mail.sh"), action], env=env, check=True, capture_output=True)


def stop_sink(stack: MailStack) -> None:
    pidfile = stack.directory / "run" / "sink.pid"
    pid = int(pidfile.read_text().strip())
    os.kill(pid, 15)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _running(pid):
        time.sleep(0.05)
    pidfile.unlink()


def _running(pid: int) -> bool:
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


__all__ = ["SUPPORT", "mail_script", "raw_email", "reply_to", "stop_sink"]
