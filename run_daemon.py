"""Entry point of the ingestion daemon.

`python run_daemon.py [--once] [--log-level LEVEL]`: the mailbox, outbox, triage, SLA and re-ingest jobs.
`python run_daemon.py ingest FILE.eml`: ingest one file as if it had arrived in the mailbox.
`python run_daemon.py quarantine-reingest ID`: run a quarantined email through ingestion again.
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import sys

from config import SettingsError, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Helpdesk daemon: mailbox intake, outbox, triage and SLA jobs.")
    parser.add_argument("--once", action="store_true", help="run one full pass of every job and exit")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (default: LOG_LEVEL)")
    commands = parser.add_subparsers(dest="command")
    ingest = commands.add_parser("ingest", help="ingest FILE.eml as if it had arrived in the mailbox")
    ingest.add_argument("path", type=pathlib.Path, metavar="FILE.eml")
    reingest = commands.add_parser("quarantine-reingest", help="run quarantined email ID through ingestion again")
    reingest.add_argument("quarantine_id", metavar="ID")
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

    if args.command == "ingest":
        if not args.path.is_file():
            print(f"error: no such file: {args.path}", file=sys.stderr)
            return 2
        from daemon.commands import ingest_file

        print(ingest_file(args.path, settings))
        return 0
    if args.command == "quarantine-reingest":
        from daemon.commands import reingest_one

        try:
            print(reingest_one(args.quarantine_id, settings))
        except LookupError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0

    from daemon.scheduler import run_daemon

    return run_daemon(settings, once=args.once)


if __name__ == "__main__":
    sys.exit(main())
