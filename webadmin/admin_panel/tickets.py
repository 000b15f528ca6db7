"""Tickets (filters, search, reassign, bulk actions), escalations and the triage review queue."""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from flask import flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_jwt_extended import current_user
from markupsafe import Markup, escape
from werkzeug.wrappers import Response
from wtforms import SelectField, StringField
from wtforms.validators import ValidationError

from models import Category, Skill, Ticket, User, record_audit
from models.ticket_index import FAR_PAST, TicketRow
from models.users import staff_members
from webadmin import ticket_actions
from webadmin.admin_panel.base import SecureModelView, parse_csv, require_reason
from webadmin.tickets import ticket_index

UNASSIGNED = ""


def staff_choices() -> list[tuple[str, str]]:
    people = sorted(staff_members(), key=lambda u: u.email)
    return [(UNASSIGNED, "— unassigned —")] + [
        (u.email, f"{u.email} ({u.role}: {', '.join(u.skills)})") for u in people
    ]


def _number_link(view, context, model, name):  # noqa: ANN001,ANN202 - Flask-Admin formatter signature
    return Markup(f'<a href="/tickets/{int(model.number)}">#{int(model.number)}</a>')


def valid_ids(ids: list[str]) -> list[ObjectId]:
    """Row ids from a list action; malformed ones (only a crafted request sends them) are dropped one by one."""
    return [ObjectId(i) for i in ids if ObjectId.is_valid(i)]


def selected_tickets(ids: list[str] | list[ObjectId]) -> list[Ticket]:
    """The selected tickets by `_id`, one lookup each (`$in` reads every ticket on FerretDB), by number."""
    found = (Ticket.objects(id=ticket_id).first() for ticket_id in valid_ids([str(i) for i in ids]))
    return sorted((t for t in found if t is not None), key=lambda t: t.number)


def audit_ticket(ticket: Ticket, action_name: str, detail: str) -> None:
    record_audit(current_user.email, action_name, f"ticket:{ticket.number}", ticket_number=ticket.number, detail=detail)


def awaits_first_attempt(ticket: Ticket) -> bool:
    """Already queued for triage and not tried yet: a re-triage would change nothing."""
    return ticket.triage.state == "pending" and not ticket.triage.attempts


class TicketView(SecureModelView):
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
    column_filters = ("status", "priority", "category", "escalated", "requester_email", "sla_breached")
    column_searchable_list = ("subject", "requester_email")
    column_default_sort = ("created_at", True)
    column_formatters = {"number": _number_link}
    form_columns = ("status", "priority", "category", "skills_csv", "assign_to", "reason")
    form_overrides = {"category": SelectField}
    form_args: dict[str, dict[str, Any]] = {"category": {"choices": []}}
    form_extra_fields = {
        "skills_csv": StringField("Required skills", description="comma-separated"),
        "assign_to": SelectField("Assignee", choices=[], validate_choice=False),
        "reason": StringField("Reason", description="why (kept in the audit log); required when reassigning"),
    }

    # The list in its default order, unfiltered and unsearched, comes from the in-memory ticket index and
    # the page's tickets by `_id`: on FerretDB Flask-Admin's count and sort read every ticket (about 4 s
    # at 10,000). Filters, search and other sort orders still query the database.
    @staticmethod
    def index_filter(row: TicketRow) -> bool:
        return True

    def get_list(  # type: ignore[override]
        self,
        page: int | None,
        sort_column: str | None,
        sort_desc: bool,
        search: str | None,
        filters: list | None,
        execute: bool = True,
        page_size: int | None = None,
    ) -> tuple[int | None, Any]:
        default_column, default_desc = self.column_default_sort
        custom_order = sort_column and (sort_column, bool(sort_desc)) != (default_column, default_desc)
        if search or filters or custom_order or not execute:
            return super().get_list(page, sort_column, sort_desc, search, filters, execute, page_size)
        rows = [row for row in ticket_index().rows() if self.index_filter(row)]
        rows.sort(key=lambda row: (getattr(row, default_column) or FAR_PAST, row.number), reverse=default_desc)
        size = self.page_size if page_size is None else page_size
        chosen = rows[(page or 0) * size : ((page or 0) + 1) * size] if size else rows
        tickets = [Ticket.objects(id=row.id).first() for row in chosen]
        return len(rows), [t for t in tickets if t is not None]

    def _fill_choices(self, form):  # noqa: ANN001,ANN202
        form.assign_to.choices = staff_choices()
        form.category.choices = [("", "—")] + [(c, c) for c in Category.objects.order_by("name").distinct("name")]
        return form

    def edit_form(self, obj=None):  # noqa: ANN001,ANN201
        form = self._fill_choices(super().edit_form(obj))
        if request.method == "GET" and obj is not None:
            form.assign_to.data = obj.assignee.email if obj.assignee else UNASSIGNED
            form.skills_csv.data = ", ".join(obj.required_skills)
        return form

    def on_model_change(self, form, model: Ticket, is_created: bool) -> None:  # noqa: ANN001
        before = Ticket.objects(id=model.id).first()
        model.category = model.category or None
        model.required_skills = parse_csv(form.skills_csv.data)
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
    column_default_sort = ("escalated_at", True)

    def get_query(self):  # noqa: ANN201
        return super().get_query().filter(escalated=True)

    @staticmethod
    def index_filter(row: TicketRow) -> bool:
        return row.escalated


def _confidence(view, context, model, name):  # noqa: ANN001,ANN202
    values = model.triage.confidence or {}
    return ", ".join(f"{k} {float(v):.2f}" for k, v in sorted(values.items()))


def _review_reason(view, context, model, name):  # noqa: ANN001,ANN202
    return model.triage.review_reason or ""


class TriageReviewView(TicketView):
    """Tickets whose triage was unsure (or suspected prompt injection): confirm or correct."""

    column_list = ("number", "subject", "category", "priority", "required_skills", "review_reason", "confidence")
    column_formatters = {"number": _number_link, "confidence": _confidence, "review_reason": _review_reason}
    column_default_sort = ("created_at", False)

    def get_query(self):  # noqa: ANN201
        return super().get_query().filter(triage__state="review")

    @staticmethod
    def index_filter(row: TicketRow) -> bool:
        return row.triage_state == "review"

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
