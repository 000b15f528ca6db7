"""APScheduler 3.x jobs of the daemon: mailboxes, outbox, triage, SLA, quarantine re-ingest requests, retrain,
the dashboard's figures.

Explicit job ids, `replace_existing`, `coalesce`, one running instance per job, an error listener.
SIGTERM sets the stop event: the mailbox loop finishes the message in hand, then the scheduler stops.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import signal
import threading
from collections.abc import Callable
from types import ModuleType

from apscheduler.events import EVENT_JOB_ERROR, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from config import Settings
from daemon import handoff
from daemon.ingest import reingest_requested
from daemon.mailbox_settings import readable_mailboxes
from daemon.mailboxes import REFRESH_SECONDS, MailboxSupervisor
from daemon.outbox import send_due
from daemon.poller import NEW_TICKETS, poll_once, run_mailbox_loop
from daemon.pressure import intake_busy
from daemon.web_intake import ingest_web_submissions
from models import connect_db, ensure_all_indexes, figures

logger = logging.getLogger(__name__)
_triage_warned = False


def _triage_jobs() -> ModuleType | None:
    """triage.jobs, written by the triage issue; None (warned once) while it is not importable."""
    global _triage_warned
    try:
        return importlib.import_module("triage.jobs")
    except ImportError as exc:
        if not _triage_warned:
            logger.warning("triage jobs unavailable (%s); running without triage and SLA jobs", exc)
            _triage_warned = True
        return None


def _triage_call(name: str, settings: Settings, **options: object) -> Callable[[], None]:
    def run() -> None:
        module = _triage_jobs()
        if module is not None:
            getattr(module, name)(settings, **options)

    run.__name__ = name
    return run


def _warm_up(settings: Settings) -> None:
    """Beside the mailbox's start: load the offline model, then Flask-Mail (the first acknowledgement needs it)."""
    try:
        from triage.service import warm_up
    except ImportError as exc:
        logger.warning("offline model unavailable (%s)", exc)
    else:
        warm_up(settings)
    importlib.import_module("flask_mail")


def run_once(settings: Settings) -> dict[str, object]:
    """One full pass of every job (each mailbox's fetch, outbox send, triage, SLA, figures); what each did.

    The settings' mailbox is "mailbox", another one "mailbox:ADDRESS"; a failing mailbox (recorded on its cursor)
    is "failed: ..." and the others are read all the same."""
    summary: dict[str, object] = {}
    for address, mailbox_settings in readable_mailboxes(settings):
        name = f"mailbox:{address}" if address else "mailbox"
        try:
            result = poll_once(mailbox_settings)
        except Exception as exc:  # recorded on its cursor by poll_once; the next mailbox is read all the same
            logger.warning("mailbox %s failed: %s: %s", address or "of the settings", type(exc).__name__, exc)
            summary[name] = f"failed: {type(exc).__name__}"
            continue
        summary[name] = dict(result.outcomes) if result.lease_held else "lease held by another instance"
    summary["outbox"] = send_due(settings, limit=1000)
    summary["quarantine-reingest"] = reingest_requested(settings)
    summary["web-intake"] = ingest_web_submissions(settings)
    for name in ("triage_job", "sla_job"):
        try:
            _triage_call(name, settings)()
            summary[name] = "ok"
        except Exception:  # one failing job must not hide the others' results
            logger.exception("%s failed", name)
            summary[name] = "failed"
    summary["dashboard-figures"] = "refreshed" if figures.refresh() else "unchanged"
    return summary


def build_scheduler(
    settings: Settings, stop: threading.Event, mailboxes: MailboxSupervisor | None = None
) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(8)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
        timezone="UTC",
    )
    # the mailbox job is one long-running loop (IDLE, reconnects, lease) until `stop` is set
    scheduler.add_job(run_mailbox_loop, "date", args=[settings, stop], id="mailbox", replace_existing=True)
    if mailboxes is not None:  # the other support mailboxes, each in its own loop thread (daemon/mailboxes.py)
        scheduler.add_job(mailboxes.sync, "interval", seconds=REFRESH_SECONDS, id="mailboxes", replace_existing=True)
    scheduler.add_job(
        send_due,
        "interval",
        seconds=settings.outbox_interval_seconds,
        args=[settings],
        id="outbox",
        replace_existing=True,
    )
    # an idle pass is two indexed claims that find nothing: cheap enough to look every second
    # one batch per pass while intake has a backlog (daemon/pressure.py)
    # new tickets this process inserted claimed for its triage come first (daemon/handoff.py, when enabled)
    triage = _triage_call("triage_job", settings, keep_going=lambda: not intake_busy(), handed=handoff)
    scheduler.add_job(triage, "interval", seconds=1, id="triage", replace_existing=True)
    scheduler.add_job(_triage_call("sla_job", settings), "interval", seconds=60, id="sla", replace_existing=True)
    scheduler.add_job(
        _triage_call("retrain_job", settings), "cron", hour=3, minute=17, id="retrain", replace_existing=True
    )
    scheduler.add_job(  # tickets and replies from the web and API (models/submissions.py)
        ingest_web_submissions,
        "interval",
        seconds=settings.web_intake_interval_seconds,
        args=[settings],
        id="web-intake",
        replace_existing=True,
    )
    scheduler.add_job(
        reingest_requested, "interval", seconds=5, args=[settings], id="quarantine-reingest", replace_existing=True
    )
    # the dashboard's figures read every open ticket: computed here, not in a page's request (models/figures.py)
    scheduler.add_job(
        figures.refresh, "interval", seconds=figures.REFRESH_SECONDS, id="dashboard-figures", replace_existing=True
    )

    def on_error(event: JobExecutionEvent) -> None:
        logger.error("job %s failed: %r", event.job_id, event.exception)

    scheduler.add_listener(on_error, EVENT_JOB_ERROR)
    return scheduler


def run_soon(scheduler: BackgroundScheduler, job_id: str) -> None:
    """Bring an interval job's next run forward to now (new tickets need triage; no need to wait for its tick).
    A run already under way is not doubled: the scheduler skips a second instance."""
    job = scheduler.get_job(job_id)
    if job is not None:
        job.modify(next_run_time=dt.datetime.now(dt.UTC))


def run_daemon(settings: Settings, *, once: bool = False) -> int:
    """The daemon's one function: connect, then one pass (`once`) or the scheduler until SIGTERM/SIGINT."""
    if not once:  # the offline model and Flask-Mail load beside the mailbox's start, not in front of it
        threading.Thread(target=_warm_up, args=[settings], name="warm-up", daemon=True).start()
    connect_db(settings.mongo_uri)
    ensure_all_indexes()
    if once:
        summary = run_once(settings)
        logger.info("one pass: %s", summary)
        failed = [name for name, value in summary.items() if name.startswith("mailbox") and str(value)[:6] == "failed"]
        return 1 if failed else 0
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.set())
    if settings.offline_triage:  # new tickets go to this process's triage without a claim write (daemon/handoff.py)
        handoff.enable()
    mailboxes = MailboxSupervisor(settings, stop)
    scheduler = build_scheduler(settings, stop, mailboxes)
    scheduler.start()
    now = dt.datetime.now(dt.UTC)
    for job in scheduler.get_jobs():  # interval jobs start at once rather than one interval from now
        if job.id not in ("retrain", "mailbox"):
            job.modify(next_run_time=now)
    logger.info("daemon running (jobs: %s)", ", ".join(job.id for job in scheduler.get_jobs()))
    # Wait in short slices: a signal the OS hands to a worker thread runs its Python handler only when the
    # main thread executes bytecode, and a bare wait() never does (the daemon then ignored SIGTERM/SIGINT).
    while not stop.is_set():
        if NEW_TICKETS.wait(timeout=0.5):
            NEW_TICKETS.clear()
            run_soon(scheduler, "triage")
    logger.info("stopping: finishing the message in hand")
    mailboxes.stop_all()
    scheduler.shutdown(wait=True)
    try:
        given_back = handoff.release_all()
    except Exception:  # e.g. the database is down: their claims expire instead (daemon/handoff.py)
        logger.warning("could not hand new tickets back to the triage queue; their claims expire", exc_info=True)
    else:
        if given_back:
            logger.info("%s new tickets handed back to the triage queue", given_back)
    logger.info("stopped")
    return 0
