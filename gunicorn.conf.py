"""gunicorn settings for the panel: `gunicorn -c gunicorn.conf.py 'webadmin:create_app()'`.

Workers hold no copy of the data: each serves from the database on its first request. The indexes are
created once, in the master before it forks (`on_starting`), not per worker.
"""

bind = "127.0.0.1:8000"
workers = 4
timeout = 30
# Access log lines show only the first characters of a status-link token (the token is a credential).
logger_class = "webadmin.status.access_log.RedactingLogger"


def on_starting(server) -> None:  # noqa: ANN001 - gunicorn's Arbiter
    from config import load_settings
    from models import connect_db, disconnect_db, ensure_all_indexes
    from webadmin.cli import with_timeouts

    connect_db(with_timeouts(load_settings().mongo_uri))
    try:
        ensure_all_indexes()
    finally:
        disconnect_db()  # workers open their own connections after the fork
    server.log.info("database indexes ready")


def post_worker_init(worker) -> None:  # noqa: ANN001 - gunicorn's Worker
    worker.log.info("worker ready")  # no warm-up: nothing is loaded before the first request
