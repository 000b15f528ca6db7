"""Helpers for tests that talk to the loopback mail stack."""

from __future__ import annotations

import email
import email.policy
import os
import pathlib
import smtplib
import subprocess
import time
from dataclasses import dataclass
from email.message import EmailMessage

SUPPORT = "support@example.test"


@dataclass
class MailStack:
    directory: pathlib.Path
    imap_port: int
    imaps_port: int
    smtp_in_port: int
    sink_port: int

    @property
    def sink_dir(self) -> pathlib.Path:
        return self.directory / "data" / "sink" / "new"

    def doveadm(self, *args: str, stdin: bytes | None = None) -> str:
        result = subprocess.run(
            ["doveadm", "-c", str(self.directory / "etc" / "dovecot.conf"), *args],
            input=stdin,
            capture_output=True,
            check=True,
        )
        return result.stdout.decode()

    def reset(self) -> None:
        """Empty every folder of the support mailbox and the outbound sink."""
        self.doveadm("expunge", "-u", SUPPORT, "mailbox", "*", "all")
        for path in self.sink_dir.glob("*"):
            path.unlink()

    def deliver(self, raw: bytes, mailbox: str = "INBOX", user: str = SUPPORT) -> None:
        """Put a raw message straight into a mailbox (no SMTP; keeps broken messages broken)."""
        self.doveadm("save", "-u", user, "-m", mailbox, stdin=raw)

    def send(self, message: EmailMessage, to: str = SUPPORT) -> None:
        """Send through the SMTP relay; the message is in IMAP when this returns."""
        with smtplib.SMTP("127.0.0.1", self.smtp_in_port, timeout=10) as smtp:
            smtp.send_message(message, to_addrs=[to])

    def sink_messages(self) -> list[email.message.EmailMessage]:
        """Outbound messages the app sent, oldest first."""
        paths = sorted(self.sink_dir.glob("*"))
        return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in paths]

    def wait_for_sink(self, count: int, timeout: float = 10.0) -> list[email.message.EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            messages = self.sink_messages()
            if len(messages) >= count:
                return messages
            time.sleep(0.05)
        raise AssertionError(f"expected {count} outbound messages, sink has {len(self.sink_messages())}")


def make_email(
    subject: str = "Printer on fire",
    body: str = "Hello, my printer is on fire. Please help.",
    sender: str = "customer@example.test",
    to: str = SUPPORT,
    message_id: str | None = None,
    **headers: str,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id or email.utils.make_msgid(domain="customer.example")
    message["Date"] = email.utils.formatdate()
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


def refresh_planner_statistics(pg_port: int) -> None:
    """ANALYZE the embedded server's tables, as autovacuum does on a live system within a minute of a bulk
    load: without statistics PostgreSQL's planner guesses, and a guess is not what production runs."""
    if os.environ.get("TEST_MONGO_URI"):
        return  # a real MongoDB plans on its own
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", str(pg_port), "-U", "postgres", "-d", "postgres"]
        + ["-qAtX", "-c", "ANALYZE"],
        check=True,
        capture_output=True,
    )
