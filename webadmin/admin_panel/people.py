"""Users (role, skills, active, reset password), skills and categories."""

from __future__ import annotations

from flask_admin.contrib.mongoengine.filters import BooleanEqualFilter
from flask_jwt_extended import current_user
from mongoengine.queryset import QuerySet
from wtforms import PasswordField, StringField
from wtforms.validators import Optional, ValidationError

from models import Skill, User, record_audit
from models.users import MIN_PASSWORD_LENGTH, normalise_email, normalise_skills
from webadmin.admin_panel.base import SecureModelView, SkillCheckboxes, skill_choices
from webadmin.ticket_actions import reroute_open_tickets_of


def email_prefix_search(query: QuerySet, search_term: str) -> QuerySet:
    """Users whose address starts with the term: an anchored, case-sensitive prefix on the lower-cased
    `email`, which the unique email index serves (Flask-Admin's own search is an unanchored regex)."""
    return query.filter(email__startswith=normalise_email(search_term))


class UserView(SecureModelView):
    """Moderators and admins (`role, email` index); requesters have their own list below."""

    roles: tuple[str, ...] = ("moderator", "admin")
    column_list: tuple[str, ...] = ("email", "name", "role", "skills", "active", "created_at", "last_assigned_at")
    column_filters = (BooleanEqualFilter("active", "Active"),)
    column_searchable_list = ("email",)
    column_default_sort = "email"
    column_sortable_list = ("email",)
    search_hint = "Address starts with…"

    def get_query(self) -> QuerySet:
        return super().get_query().filter(role__in=self.roles)

    def _search(self, query: QuerySet, search_term: str) -> QuerySet:
        return email_prefix_search(query, search_term)

    form_columns = ("email", "name", "role", "active", "skill_set", "new_password", "reason")
    form_extra_fields = {
        "skill_set": SkillCheckboxes("Skills"),
        "new_password": PasswordField(
            "New password", [Optional()], description=f"leave empty to keep; at least {MIN_PASSWORD_LENGTH} characters"
        ),
        "reason": StringField("Reason", description="why you change the role or deactivate (audit log)"),
    }

    def create_form(self, obj=None):  # noqa: ANN001,ANN201
        form = super().create_form(obj)
        form.skill_set.choices = skill_choices()
        return form

    def edit_form(self, obj=None):  # noqa: ANN001,ANN201
        form = super().edit_form(obj)
        form.skill_set.choices = skill_choices(list(obj.skills) if obj is not None else [])
        return form

    def on_form_prefill(self, form, id) -> None:  # noqa: A002,ANN001 - Flask-Admin's signature
        user = User.objects(id=id).first()
        form.skill_set.data = list(user.skills) if user else []

    def on_model_change(self, form, model: User, is_created: bool) -> None:  # noqa: ANN001
        before = None if is_created else User.objects(id=model.id).first()
        actor = current_user.email
        model.skills = normalise_skills([s.strip().lower() for s in form.skill_set.data or [] if s.strip()])
        unknown = set(model.skills) - set(Skill.objects.distinct("name"))
        if unknown:
            raise ValidationError(f"Unknown skills: {', '.join(sorted(unknown))} (add them under Skills first)")
        if form.new_password.data:
            model.set_password(form.new_password.data)  # ValueError for a weak password is shown as a flash
        if model.role != "user" and not model.password_hash:
            raise ValidationError("Moderators and admins need a password.")
        reason = (form.reason.data or "").strip()
        if before is not None and before.id == current_user.id and (model.role != "admin" or not model.active):
            raise ValidationError("You cannot demote or deactivate yourself.")
        model._lost_staff = False
        if is_created:
            record_audit(actor, "user_create", f"user:{model.email}", detail=f"role={model.role}", reason=reason)
            return
        assert before is not None, "an edited user exists in the database"
        if before.role != model.role:
            record_audit(
                actor, "role_change", f"user:{model.email}", detail=f"{before.role} -> {model.role}", reason=reason
            )
            model._lost_staff = before.role in ("moderator", "admin") and model.role == "user"
        if before.active != model.active:
            record_audit(actor, "activate" if model.active else "deactivate", f"user:{model.email}", reason=reason)
            model._lost_staff = model._lost_staff or not model.active
        if list(before.skills) != list(model.skills):
            record_audit(actor, "skills_change", f"user:{model.email}", detail=f"{before.skills} -> {model.skills}")
        if form.new_password.data:
            record_audit(actor, "password_reset", f"user:{model.email}", reason=reason)

    def after_model_change(self, form, model: User, is_created: bool) -> None:  # noqa: ANN001
        if getattr(model, "_lost_staff", False):
            reroute_open_tickets_of(model, current_user, self.settings)


class RequesterView(UserView):
    """Customers (role `user`)."""

    roles = ("user",)
    column_list = ("email", "name", "active", "created_at")


class SkillView(SecureModelView):
    search_hint = "Name or description"
    column_list = ("name", "description", "keywords", "active")
    column_searchable_list = ("name", "description")
    column_default_sort = "name"
    form_columns = ("name", "description", "keywords", "active")


class CategoryView(SecureModelView):
    search_hint = "Name or description"
    column_list = ("name", "description", "default_skills", "keywords", "active")
    column_searchable_list = ("name", "description")
    column_default_sort = "name"
    form_columns = ("name", "description", "default_skills", "keywords", "active")
