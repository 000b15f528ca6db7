"""Entry point of the ingestion daemon: `python run_daemon.py [--once] [--log-level LEVEL]`."""

from __future__ import annotations

import argparse
import logging
import sys

from config import SettingsError, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Helpdesk daemon: mailbox intake, outbox, triage and SLA jobs.")
    parser.add_argument("--once", action="store_true", help="run one full pass of every job and exit")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (default: LOG_LEVEL)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=(args.log_level or settings.log_level).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("imapclient").setLevel(logging.WARNING)
    # APScheduler logs every run of the 2-second jobs at INFO; what happened to each message is ours to log.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)

    from daemon.scheduler import run_daemon

    return run_daemon(settings, once=args.once)


if __name__ == "__main__":
    sys.exit(main())
