"""API keys for integrations: admins create them (the key is shown once), scope them and revoke them."""

from __future__ import annotations

from typing import Any

from flask import flash
from flask_admin.actions import action
from flask_jwt_extended import current_user
from markupsafe import Markup, escape
from wtforms import Form, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length

from models import record_audit
from models.api_keys import SCOPES, ApiKey, create_api_key, revoke_api_key
from webadmin.admin_panel.base import SecureModelView


class ApiKeyForm(Form):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)], description="Who uses it, e.g. 'shop'.")
    scopes = SelectMultipleField("Scopes", choices=list(SCOPES), default=list(SCOPES), validators=[DataRequired()])


class ApiKeyView(SecureModelView):
    can_create = True
    can_edit = False
    column_list = ("name", "prefix", "scopes", "created_by", "created_at", "last_used_at", "revoked_at", "revoked_by")
    column_default_sort = ("created_at", True)  # index -created_at
    column_sortable_list = ("created_at",)
    column_searchable_list = ("name", "prefix")

    def get_create_form(self) -> type[Form]:
        return ApiKeyForm

    def create_model(self, form: Any) -> ApiKey | bool:
        """Store only the key's hash; show the key itself once, now."""
        record, key = create_api_key(form.name.data.strip(), list(form.scopes.data), current_user.email)
        record_audit(current_user.email, "api_key_create", f"api_key:{record.prefix}", detail=",".join(record.scopes))
        flash(
            Markup("API key for {}: <code>{}</code> Copy it now: it is not stored and cannot be shown again.").format(
                escape(record.name), escape(key)
            ),
            "success",
        )
        return record

    @action("revoke", "Revoke", "Revoke the selected keys? Integrations using them stop working at once.")
    def action_revoke(self, ids: list[str]) -> None:
        revoked = 0
        for record in ApiKey.objects(key_hash__in=ids):
            if revoke_api_key(record, current_user.email):
                record_audit(current_user.email, "api_key_revoke", f"api_key:{record.prefix}")
                revoked += 1
        flash(f"Revoked {revoked} key(s).", "success")
