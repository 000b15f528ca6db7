"""Mailbox OAuth2 grants (read only): whether each mailbox can still log in, the provider's error, what to do."""

from __future__ import annotations

from markupsafe import Markup, escape

from webadmin.admin_panel.base import SecureModelView


def _state_badge(view, context, model, name):  # noqa: ANN001,ANN202 - Flask-Admin formatter signature
    colour = "success" if model.state == "ok" else "danger"
    return Markup(f'<span class="badge badge-{colour}">{escape(model.state)}</span>')


class MailGrantView(SecureModelView):
    can_create = False
    can_edit = False
    can_delete = False
    can_view_details = True
    column_list = ("account", "state", "error", "action", "refreshed_at", "expires_at", "updated_at")
    column_labels = {"action": "What to do", "expires_at": "Access token expires"}
    column_formatters = {"state": _state_badge}
    column_default_sort = "account"  # one row per OAuth2 mailbox
    action_disallowed_list = ("delete",)
