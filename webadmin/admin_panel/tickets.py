"""Tickets (filters, search, reassign, bulk actions), escalations and the triage review queue."""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from flask import flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.mongoengine.filters import BooleanEqualFilter, FilterEqual
from flask_jwt_extended import current_user
from markupsafe import Markup, escape
from mongoengine.queryset import QuerySet
from werkzeug.wrappers import Response
from wtforms import SelectField, StringField
from wtforms.validators import ValidationError

from models import PRIORITIES, STATUSES, Category, Skill, Ticket, User, record_audit
from models.tickets import highest_ticket_number
from models.users import staff_members
from webadmin import ticket_actions
from webadmin.admin_panel.base import (
    NewestFirstWindowMixin,
    SecureModelView,
    SkillCheckboxes,
    require_reason,
    skill_choices,
)
from webadmin.tickets import search_query
from webadmin.windows import first_window

UNASSIGNED = ""


def staff_choices() -> list[tuple[str, str]]:
    people = sorted(staff_members(), key=lambda u: u.email)  # a short list: moderators and admins
    return [(UNASSIGNED, "— unassigned —")] + [
        (u.email, f"{u.email} ({u.role}: {', '.join(u.skills)})") for u in people
    ]


def _number_link(view, context, model, name):  # noqa: ANN001,ANN202 - Flask-Admin formatter signature
    return Markup(f'<a href="/tickets/{int(model.number)}">#{int(model.number)}</a>')


def valid_ids(ids: list[str]) -> list[ObjectId]:
    """Row ids from a list action; malformed ones (only a crafted request sends them) are dropped one by one."""
    return [ObjectId(i) for i in ids if ObjectId.is_valid(i)]


def selected_tickets(ids: list[str] | list[ObjectId]) -> list[Ticket]:
    """The selected tickets (one `$in` on `_id`), by number."""
    return list(Ticket.objects(id__in=valid_ids([str(i) for i in ids])).order_by("number"))


def audit_ticket(ticket: Ticket, action_name: str, detail: str) -> None:
    record_audit(current_user.email, action_name, f"ticket:{ticket.number}", ticket_number=ticket.number, detail=detail)


def awaits_first_attempt(ticket: Ticket) -> bool:
    """Already queued for triage and not tried yet: a re-triage would change nothing."""
    return ticket.triage.state == "pending" and not ticket.triage.attempts


class TicketView(NewestFirstWindowMixin, SecureModelView):
    window_assignees = True  # the page's assignees in one `$in`, not one query per row
    list_only_columns = True
    simple_list_pager = True  # newer/older pages, no count: counting 100,000 tickets (or a search's hits) is slow
    page_size = 25  # as the queue; a page renders in half the time of 50 rows
    page_size_options = (25, 50, 100)
    search_hint = "Words, #number or address"
    can_create = False
    column_list: tuple[str, ...] = (
        "number",
        "subject",
        "status",
        "priority",
        "category",
        "assignee",
        "requester_email",
        "escalated",
        "created_at",
    )
    # Equality filters and sorts the declared indexes serve (`status, -number`, `requester_email, -number`,
    # `priority`, `category`, `escalated, -escalated_at`, `-created_at`, unique `number`); the search box
    # takes words ($text), a ticket number or a requester's address, never an unanchored regex.
    column_filters = (
        FilterEqual("status", "Status", options=[(s, s) for s in STATUSES]),
        FilterEqual("priority", "Priority", options=[(p, p) for p in PRIORITIES]),
        FilterEqual("category", "Category"),
        BooleanEqualFilter("escalated", "Escalated"),
        FilterEqual("requester_email", "Requester"),
    )
    column_searchable_list = ("subject", "requester_email")
    column_default_sort: tuple[str, bool] = ("number", True)
    column_sortable_list: tuple[str, ...] = ("number", "created_at")
    column_formatters = {"number": _number_link}
    form_columns = ("status", "priority", "category", "skill_set", "assign_to", "reason")
    form_overrides = {"category": SelectField}
    form_args: dict[str, dict[str, Any]] = {"category": {"choices": []}}
    form_extra_fields = {
        "skill_set": SkillCheckboxes("Required skills"),
        "assign_to": SelectField("Assignee", choices=[], validate_choice=False),
        "reason": StringField("Reason", description="why (kept in the audit log); required when reassigning"),
    }

    def _search(self, query: QuerySet, search_term: str) -> QuerySet:
        return query.filter(__raw__=search_query(search_term))

    def window_bounds(self, skip: int, limit: int) -> tuple[int, int, int]:
        return highest_ticket_number(), first_window(skip, limit), 0

    def _fill_choices(self, form, obj=None):  # noqa: ANN001,ANN202
        form.assign_to.choices = staff_choices()
        form.skill_set.choices = skill_choices(list(obj.required_skills) if obj is not None else [])
        form.category.choices = [("", "—")] + [(c, c) for c in Category.objects.order_by("name").distinct("name")]
        return form

    def edit_form(self, obj=None):  # noqa: ANN001,ANN201
        form = self._fill_choices(super().edit_form(obj), obj)
        if request.method == "GET" and obj is not None:
            form.assign_to.data = obj.assignee.email if obj.assignee else UNASSIGNED
            form.skill_set.data = list(obj.required_skills)
        return form

    def on_model_change(self, form, model: Ticket, is_created: bool) -> None:  # noqa: ANN001
        before = Ticket.objects(id=model.id).first()
        model.category = model.category or None
        model.required_skills = [s.strip().lower() for s in form.skill_set.data or [] if s.strip()]
        unknown = set(model.required_skills) - set(Skill.objects.distinct("name"))
        if unknown:
            raise ValidationError(f"Unknown skills: {', '.join(sorted(unknown))}")
        changed = [f for f in ("category", "priority", "required_skills") if before[f] != model[f]]
        ticket_actions.mark_human_fields(model, changed)
        wanted = form.assign_to.data or UNASSIGNED
        current = before.assignee.email if before.assignee else UNASSIGNED
        if wanted != current:
            assignee = User.by_email(wanted) if wanted else None
            if wanted and (assignee is None or not assignee.active or not assignee.is_staff):
                raise ValidationError("Pick an active moderator or admin.")
            reason = require_reason(form.reason.data, "reassignment")
            ticket_actions.assign(model, current_user, assignee, reason, self.settings)

    @action("reassign", "Reassign", None)
    def action_reassign(self, ids: list[str]) -> Response:
        return redirect(url_for(".bulk_reassign", ids=",".join(ids)))

    @action("close", "Close", "Close the selected tickets?")
    def action_close(self, ids: list[str]) -> None:
        closed = 0
        for ticket in selected_tickets(ids):
            if ticket.status == "closed":
                continue
            old = ticket.status
            ticket_actions.change_status(ticket, current_user, "closed", self.settings)
            audit_ticket(ticket, "close", f"{old} -> closed")
            closed += 1
        flash(f"Closed {closed} ticket(s).")

    @action("retriage", "Re-triage", "Send the selected tickets back to triage?")
    def action_retriage(self, ids: list[str]) -> None:
        queued = 0
        for ticket in selected_tickets(ids):
            if awaits_first_attempt(ticket):
                continue
            old = ticket.triage.state
            ticket_actions.request_retriage(ticket)
            audit_ticket(ticket, "retriage", f"triage {old} -> pending")
            queued += 1
        flash(f"Queued {queued} ticket(s) for triage.")

    @expose("/bulk-reassign/", methods=("GET", "POST"))
    def bulk_reassign(self) -> str | Response:
        ids = valid_ids((request.values.get("ids") or "").split(","))
        tickets = selected_tickets(ids)
        error = None
        if request.method == "POST":
            assignee = User.by_email(request.form.get("assignee", ""))
            reason = (request.form.get("reason") or "").strip()[:2000]
            if assignee is None or not assignee.active or not assignee.is_staff:
                error = "Pick an active moderator or admin."
            elif not reason:
                error = "Please give a reason."
            elif not tickets:
                error = "No tickets selected."
            else:
                for ticket in tickets:
                    ticket_actions.assign(ticket, current_user, assignee, reason, self.settings)
                flash(f"Reassigned {len(tickets)} ticket(s) to {escape(assignee.email)}.")
                return redirect(url_for(".index_view"))
        return self.render(
            "admin/bulk_reassign.html",
            tickets=tickets,
            choices=staff_choices()[1:],
            error=error,
            ids=",".join(str(i) for i in ids),
        )


class EscalationView(TicketView):
    """Escalated tickets with their reasons; assigning someone resolves the escalation."""

    column_list = ("number", "subject", "escalation_reason", "escalated_at", "assignee", "priority", "status")
    column_default_sort = ("escalated_at", True)  # index `escalated, -escalated_at`
    column_sortable_list = ("number", "escalated_at")

    def get_query(self) -> QuerySet:
        return super().get_query().filter(escalated=True)


def _confidence(view, context, model, name):  # noqa: ANN001,ANN202
    values = model.triage.confidence or {}
    return ", ".join(f"{k} {float(v):.2f}" for k, v in sorted(values.items()))


def _review_reason(view, context, model, name):  # noqa: ANN001,ANN202
    return model.triage.review_reason or ""


class TriageReviewView(TicketView):
    """Tickets whose triage was unsure (or suspected prompt injection): confirm or correct."""

    column_list = ("number", "subject", "category", "priority", "required_skills", "review_reason", "confidence")
    column_formatters = {"number": _number_link, "confidence": _confidence, "review_reason": _review_reason}
    column_default_sort = ("number", False)  # oldest first; index `triage.state, number`
    list_extra_fields = ("triage",)

    def get_query(self) -> QuerySet:
        return super().get_query().filter(triage__state="review")

    def after_model_change(self, form, model: Ticket, is_created: bool) -> None:  # noqa: ANN001
        Ticket.objects(id=model.id).update_one(set__triage__state="done")

    @action("approve", "Approve triage", "Accept the suggested category, priority and skills?")
    def action_approve(self, ids: list[str]) -> None:
        approved = 0
        for ticket in [t for t in selected_tickets(ids) if t.triage.state == "review"]:  # not one re-queued meanwhile
            ticket_actions.mark_human_fields(ticket, ["category", "priority", "required_skills"])
            ticket.triage.state = "done"
            ticket.save()
            approved += 1
        flash(f"Approved {approved} ticket(s).")
