"""Mailbox OAuth2 grants (read only: can each mailbox still log in, the provider's error, what to do) and the
support mailboxes kept in the database (credentials write-only)."""

from __future__ import annotations

from markupsafe import Markup, escape
from wtforms import PasswordField
from wtforms.validators import Optional, ValidationError

from models import MailboxCursor, utcnow
from models.mailboxes import SupportMailbox
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


def _poll_state(view, context, model, name):  # noqa: ANN001,ANN202 - Flask-Admin formatter signature
    """When the daemon last read it and its last error (the cursor, one `_id`-like unique lookup per row)."""
    cursor = MailboxCursor.objects(mailbox=model.cursor_name).only("last_poll_at", "last_error").first()
    if not model.enabled:
        return Markup('<span class="badge badge-secondary">off</span>')
    if cursor is None or (cursor.last_poll_at is None and not cursor.last_error):
        return Markup('<span class="badge badge-secondary">not read yet</span>')
    polled = f"last read {cursor.last_poll_at:%Y-%m-%d %H:%M:%S} UTC" if cursor.last_poll_at else "never read"
    if cursor.last_error:
        error = escape(cursor.last_error)
        return Markup(f'<span class="badge badge-danger">failing</span> {escape(polled)}<br><small>{error}</small>')
    return Markup(f'<span class="badge badge-success">ok</span> {escape(polled)}')


def _credential(view, context, model, name):  # noqa: ANN001,ANN202 - Flask-Admin formatter signature
    return "stored" if model.sealed_secret else "none"


class SupportMailboxView(SecureModelView):
    """Support mailboxes kept in the database; the credential is write-only (sealed, never shown)."""

    can_view_details = True
    column_list = (
        "address",
        "name",
        "enabled",
        "state",
        "auth",
        "imap_host",
        "imap_folder",
        "default_category",
        "secret",
    )
    column_details_exclude_list = ("sealed_secret",)
    column_formatters = {"secret": _credential, "state": _poll_state}
    column_labels = {"secret": "Credential", "state": "State"}
    column_default_sort = "address"
    form_excluded_columns = ("sealed_secret", "created_at", "updated_at")
    form_extra_fields = {
        "new_secret": PasswordField(
            "New password or refresh token",
            [Optional()],
            description="leave empty to keep the stored one; OAuth2 mailboxes: `flask --app webadmin mail "
            "authorize --mailbox ADDRESS` stores it for you",
        )
    }

    def on_model_change(self, form, model: SupportMailbox, is_created: bool) -> None:  # noqa: ANN001
        model.address = model.address.strip().lower()
        if "@" not in model.address:
            raise ValidationError("The address must be an email address.")
        if form.new_secret.data:
            if not self.settings.mailbox_secret_key:
                raise ValidationError("Set MAILBOX_SECRET_KEY on the server first: credentials are stored sealed.")
            model.set_secret(form.new_secret.data, self.settings.mailbox_secret_key)
        model.updated_at = utcnow()
