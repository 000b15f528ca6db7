"""Quarantined emails (reason, raw download, re-ingest), the outbox (retry) and the audit log."""

from __future__ import annotations

import logging

from bson import ObjectId
from bson.errors import InvalidId
from flask import abort, flash, send_file, url_for
from flask_admin import expose
from flask_admin.actions import action
from markupsafe import Markup
from werkzeug.wrappers import Response

from models import QuarantinedEmail
from webadmin.admin_panel.base import SecureModelView

logger = logging.getLogger(__name__)


def _raw_link(view, context, model, name):  # noqa: ANN001,ANN202 - Flask-Admin formatter signature
    return Markup(f'<a href="{url_for(".raw", id=str(model.id))}">download .eml</a>') if model.raw else ""


class QuarantineView(SecureModelView):
    can_create = False
    can_edit = False
    can_view_details = True
    column_list = ("received_at", "reason", "sender", "subject", "size", "reingested_at", "reingest_result", "raw")
    column_details_exclude_list = ("raw",)
    column_formatters = {"raw": _raw_link}
    column_filters = ("reason", "sender")
    column_searchable_list = ("reason", "sender", "subject")
    column_default_sort = ("received_at", True)

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

    @action("reingest", "Re-ingest", "Run the selected emails through ingestion again?")
    def action_reingest(self, ids: list[str]) -> None:
        try:
            from daemon.ingest import reingest_quarantined
        except ImportError:
            flash("Re-ingest is not available in this installation.", "error")
            return
        results = []
        for quarantine_id in ids:
            try:
                results.append(str(reingest_quarantined(quarantine_id, self.settings)))
            except Exception:
                logger.exception("re-ingest of quarantined email %s failed", quarantine_id)
                results.append("failed")
        flash(f"Re-ingested {len(ids)} email(s): {'; '.join(results)}")


class OutboxView(SecureModelView):
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
    column_filters = ("state", "kind", "ticket_number")
    column_searchable_list = ("subject",)
    column_default_sort = ("created_at", True)

    @action("retry", "Retry", "Queue the selected failed emails for sending again?")
    def action_retry(self, ids: list[str]) -> None:
        from daemon.outbox import retry_failed

        count = sum(1 for email_id in ids if ObjectId.is_valid(email_id) and retry_failed(ObjectId(email_id)))
        flash(f"Queued {count} failed email(s) for another attempt.")


class AuditView(SecureModelView):
    can_create = False
    can_edit = False
    can_delete = False
    can_view_details = True
    column_list = ("at", "actor", "action", "target", "ticket_number", "detail", "reason")
    column_filters = ("actor", "action", "target", "ticket_number")
    column_searchable_list = ("actor", "target", "reason")
    column_default_sort = ("at", True)
    action_disallowed_list = ("delete",)
