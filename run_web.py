"""Run the web panel with Flask's development server.

Production: `gunicorn -c gunicorn.conf.py 'webadmin:create_app()'` (settings come from the environment;
the config creates the indexes once, before the workers start).
"""

from __future__ import annotations

import argparse
import logging
import sys

from pymongo.errors import ConnectionFailure

from config import SettingsError, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Helpdesk web panel (development server)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--debug", action="store_true", help="Flask debug mode (never in production)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from models import connect_db, ensure_all_indexes
    from webadmin import create_app
    from webadmin.cli import where, with_timeouts

    try:
        connect_db(with_timeouts(settings.mongo_uri))
        ensure_all_indexes()
    except ConnectionFailure:
        print(f"database unreachable at {where(settings.mongo_uri)}: start it or set MONGO_URI", file=sys.stderr)
        return 2
    app = create_app(settings)
    app.run(host=args.host, port=args.port, debug=args.debug)
    return 0


if __name__ == "__main__":
    sys.exit(main())
