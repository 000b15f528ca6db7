"""Quarantined emails (reason, raw download, re-ingest), the outbox (retry) and the audit log."""

from __future__ import annotations

import datetime as dt

from bson import ObjectId
from bson.errors import InvalidId
from flask import abort, flash, send_file, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.mongoengine.filters import FilterEqual, IntEqualFilter
from markupsafe import Markup
from werkzeug.wrappers import Response

from models import OutboundEmail, QuarantinedEmail, utcnow
from models.outbox import OUTBOX_STATES
from webadmin.admin_panel.base import NewestFirstWindowMixin, SecureModelView
from webadmin.windows import EPOCH


def _raw_link(view, context, model, name):  # noqa: ANN001,ANN202 - Flask-Admin formatter signature
    return Markup(f'<a href="{url_for(".raw", id=str(model.id))}">download .eml</a>') if model.raw else ""


class QuarantineView(SecureModelView):
    can_create = False
    can_edit = False
    can_view_details = True
    column_list = (
        "received_at",
        "reason",
        "sender",
        "subject",
        "size",
        "reingest_requested_at",
        "reingested_at",
        "reingest_result",
        "raw",
    )
    column_details_exclude_list = ("raw",)
    column_formatters = {"raw": _raw_link}
    column_filters = ("reason", "sender")
    column_searchable_list = ("reason", "sender", "subject")  # a short list of bad emails, kept for days
    column_default_sort = ("received_at", True)  # index -received_at
    column_sortable_list = ("received_at",)

    @expose("/raw/<id>")
    def raw(self, id: str) -> Response:  # noqa: A002 - Flask-Admin's naming
        try:
            item = QuarantinedEmail.objects(id=ObjectId(id)).first()
        except InvalidId:
            item = None
        if item is None or not item.raw:
            abort(404)
        return send_file(
            item.raw.get(),
            mimetype="application/octet-stream",
            as_attachment=True,
            download_name=f"quarantined-{id}.eml",
        )

    @action("reingest", "Re-ingest", "Queue the selected emails for ingestion again?")
    def action_reingest(self, ids: list[str]) -> None:
        """The daemon re-ingests what is flagged here (the web app never ingests mail itself)."""
        wanted = [ObjectId(i) for i in ids if ObjectId.is_valid(i)]
        count = QuarantinedEmail.objects(id__in=wanted).update(set__reingest_requested_at=utcnow())
        flash(f"Queued {count} email(s) for re-ingestion.")


class OutboxView(NewestFirstWindowMixin, SecureModelView):
    window_field = "created_at"

    def window_bounds(self, skip: int, limit: int) -> tuple[dt.datetime, dt.timedelta, dt.datetime]:
        return utcnow() + dt.timedelta(minutes=1), dt.timedelta(hours=6), EPOCH

    can_create = False
    can_edit = False
    can_view_details = True
    column_list = (
        "created_at",
        "kind",
        "ticket_number",
        "to",
        "subject",
        "state",
        "attempts",
        "last_error",
        "next_attempt_at",
    )
    # Served by indexes: `-created_at`, `state, next_attempt_at` and `ticket_number` (no regex search).
    column_filters = (
        FilterEqual("state", "State", options=[(s, s) for s in OUTBOX_STATES]),
        IntEqualFilter("ticket_number", "Ticket"),
    )
    column_default_sort = ("created_at", True)
    column_sortable_list = ("created_at",)

    @action("retry", "Retry", "Queue the selected failed emails for sending again?")
    def action_retry(self, ids: list[str]) -> None:
        wanted = [ObjectId(i) for i in ids if ObjectId.is_valid(i)]
        count = OutboundEmail.objects(id__in=wanted, state="failed").update(
            set__state="queued",
            set__next_attempt_at=utcnow(),
            set__attempts=0,
            unset__last_error=True,
            unset__lease_until=True,
        )
        flash(f"Queued {count} failed email(s) for another attempt.")


class AuditView(SecureModelView):
    can_create = False
    can_edit = False
    can_delete = False
    can_view_details = True
    column_list = ("at", "actor", "action", "target", "ticket_number", "detail", "reason")
    # Served by indexes: `-at`, `actor, -at`, `action, -at` and `ticket_number` (no regex search).
    column_filters = (
        FilterEqual("actor", "Actor"),
        FilterEqual("action", "Action"),
        IntEqualFilter("ticket_number", "Ticket"),
    )
    column_default_sort = ("at", True)
    column_sortable_list = ("at",)
    action_disallowed_list = ("delete",)
