"""Loopback SMTP servers for dev and tests (aiosmtpd).

relay: SMTP in -> Dovecot LMTP, so a message sent to support@ lands in its IMAP inbox before "250".
sink:  SMTP in -> one file per message under DIR/new, prefixed with X-Sink-* envelope headers.
Runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import smtplib
import ssl
import threading
import time
import uuid

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


def log(message: str) -> None:
    print(time.strftime("%Y-%m-%dT%H:%M:%S"), message, flush=True)


class LmtpRelay:
    """Deliver each recipient in its own LMTP transaction (smtplib.LMTP reads one reply after DATA)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    def _connect(self) -> smtplib.LMTP:
        client = smtplib.LMTP(timeout=30)
        client.connect(self.host, self.port)
        client.ehlo()
        return client

    def _check(self, address: str) -> tuple[int, str]:
        client = self._connect()
        try:
            client.mail("")
            code, msg = client.rcpt(address)
            return code, msg.decode(errors="replace")
        finally:
            client.quit()

    def _deliver(self, sender: str, rcpts: list[str], data: bytes) -> dict[str, str]:
        failed: dict[str, str] = {}
        client = self._connect()
        try:
            for rcpt in rcpts:
                try:
                    client.sendmail(sender, [rcpt], data)
                except smtplib.SMTPException as exc:
                    failed[rcpt] = str(exc)
                    client.rset()
        finally:
            client.quit()
        return failed

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        try:
            code, msg = await asyncio.get_running_loop().run_in_executor(None, self._check, address)
        except OSError as exc:
            return f"451 4.3.0 LMTP unavailable: {exc}"
        if code // 100 != 2:
            return f"{code} {msg}"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        data = envelope.original_content
        try:
            failed = await asyncio.get_running_loop().run_in_executor(
                None, self._deliver, envelope.mail_from, list(envelope.rcpt_tos), data
            )
        except OSError as exc:
            return f"451 4.3.0 LMTP delivery failed: {exc}"
        log(f"relay: to={envelope.rcpt_tos} size={len(data)} failed={failed}")
        if failed and len(failed) == len(envelope.rcpt_tos):
            return f"451 4.3.0 delivery failed: {failed}"
        return "250 2.0.0 delivered"


class FileSink:
    def __init__(self, directory: str) -> None:
        self.directory = directory
        for sub in ("tmp", "new"):
            os.makedirs(os.path.join(directory, sub), exist_ok=True)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        envelope_headers = (
            f"X-Sink-Mail-From: <{envelope.mail_from}>\r\n"
            f"X-Sink-Rcpt-To: {', '.join(f'<{r}>' for r in envelope.rcpt_tos)}\r\n"
        ).encode()
        name = f"{time.time_ns()}.{uuid.uuid4().hex}.eml"
        tmp = os.path.join(self.directory, "tmp", name)
        with open(tmp, "wb") as handle:
            handle.write(envelope_headers + envelope.original_content)
        os.rename(tmp, os.path.join(self.directory, "new", name))  # atomic publish
        log(f"sink: to={envelope.rcpt_tos} -> {name}")
        return "250 2.0.0 stored"


def accept_any_login(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=True, auth_data=auth_data)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["relay", "sink"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--lmtp", default="127.0.0.1:10024")
    parser.add_argument("--dir")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--pidfile")
    args = parser.parse_args()

    kwargs: dict = {"enable_SMTPUTF8": True, "data_size_limit": 50 * 1024 * 1024}
    if args.mode == "relay":
        host, port = args.lmtp.rsplit(":", 1)
        handler: object = LmtpRelay(host, int(port))
    else:
        handler = FileSink(args.dir)
        kwargs.update(authenticator=accept_any_login, auth_require_tls=False)
    if args.tls_cert and args.tls_key:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        kwargs.update(tls_context=context, require_starttls=False)
    controller = Controller(handler, hostname="127.0.0.1", port=args.port, **kwargs)
    controller.start()
    if args.pidfile:
        with open(args.pidfile, "w") as handle:
            handle.write(f"{os.getpid()}\n")
    log(f"{args.mode}: listening on 127.0.0.1:{args.port}")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    controller.stop()
    log(f"{args.mode}: stopped")


if __name__ == "__main__":
    main()
