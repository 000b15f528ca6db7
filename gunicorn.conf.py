"""gunicorn settings for the panel: `gunicorn -c gunicorn.conf.py 'webadmin:create_app()'`."""

import time

bind = "127.0.0.1:8000"
workers = 4
# A worker builds its in-memory ticket list before it serves (post_worker_init below): a few seconds
# per 10,000 tickets, longer while every worker builds at once; allow for it.
timeout = 120
# Access log lines show only the first characters of a status-link token (the token is a credential).
logger_class = "webadmin.status.access_log.RedactingLogger"


def post_worker_init(worker) -> None:  # noqa: ANN001 - gunicorn's Worker
    began = time.perf_counter()
    index = worker.wsgi.extensions["ticket_index"]
    count = len(index.rows())
    worker.log.info("ticket index ready: %d tickets in %.1fs", count, time.perf_counter() - began)
