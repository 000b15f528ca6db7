"""Server-rendered pages for moderators (and admins): the queue, a ticket, actions, my skills."""

from __future__ import annotations

import logging
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from flask import current_app, flash, jsonify, redirect, render_template, request, send_file, url_for
from flask_jwt_extended import current_user
from werkzeug.exceptions import BadRequest, Forbidden, NotFound
from werkzeug.wrappers import Response

from models import PRIORITIES, STATUSES, Category, Skill, Ticket, TicketMessage, User, record_audit, utcnow
from models.users import normalise_skills
from webadmin import ticket_actions
from webadmin.forms import arg_choice, arg_int, form_choice, form_text
from webadmin.moderator import bp
from webadmin.moderator import queue as work_queue
from webadmin.moderator.people import reassign_candidates
from webadmin.moderator.queue import (
    ANY_STATUS,
    VIEW_LABELS,
    VIEWS,
    QueueFilters,
    Windows,
    capped_count,
    capped_label,
    list_queue,
    queue_query,
    view_counts,
)
from webadmin.moderator.timeline import timeline
from webadmin.sanitize import safe_email_html
from webadmin.security import admin_required, staff_required
from webadmin.tickets import can_view, get_ticket_for, thread_of

logger = logging.getLogger(__name__)


def _settings():  # noqa: ANN202 - the app's Settings
    return current_app.extensions["settings"]


@bp.get("/")
@staff_required
def home() -> Response:
    return redirect(url_for("moderator.queue"))


@bp.get("/queue")
@staff_required
def queue() -> str:
    categories = tuple(Category.objects(active=True).distinct("name"))
    filters = _queue_filters(categories)
    now = utcnow()
    page = list_queue(
        current_user,
        filters,
        now,
        Windows.for_now(now, _settings().sla_hours),
        arg_int("page", 1, 1, 100_000),
        arg_int("per_page", 25, 5, 100),
    )
    pager_args = {
        k: v for k, v in request.args.items() if k in ("view", "status", "priority", "category", "q", "per_page")
    }
    pager_args["view"] = filters.view
    count_args: dict[str, Any] = {k: v for k, v in pager_args.items() if k != "per_page"}
    return render_template(
        "queue.html",
        page=page,
        pager_args=pager_args,
        counts_url=url_for("moderator.queue_counts", **count_args),
        filters=filters,
        views=VIEWS,
        view_labels=VIEW_LABELS,
        now=now,
        **_time_helpers(),
        statuses=STATUSES,
        priorities=PRIORITIES,
        categories=categories,
    )


@bp.get("/queue/counts")
@staff_required
def queue_counts() -> Response:
    """The saved filters' capped counts and the count of the list the arguments select (the queue page loads them
    after it is shown, so a page of tickets never waits on seven counts)."""
    filters = _queue_filters(tuple(Category.objects(active=True).distinct("name")))
    now = utcnow()
    counts = view_counts(current_user._get_current_object(), now)  # the user itself: counted on other threads
    if filters == QueueFilters(view=filters.view):
        current = counts[filters.view]
    else:  # a filtered list: counted through the list's windows
        current = capped_count(queue_query(current_user, filters, now), Windows.for_now(now, _settings().sla_hours))
    return jsonify(views={name: capped_label(n) for name, n in counts.items()}, current=capped_label(current))


def _queue_filters(categories: tuple[str, ...]) -> QueueFilters:
    return QueueFilters(
        view=arg_choice("view", VIEWS) or arg_choice("scope", ("mine", "unassigned")) or "all",
        status=arg_choice("status", (*STATUSES, ANY_STATUS)),
        priority=arg_choice("priority", PRIORITIES),
        category=arg_choice("category", categories),
        search=request.args.get("q", "").replace("\x00", "").strip()[:200],
    )


@bp.get("/tickets/<int:number>")
@staff_required
def ticket(number: int) -> str:
    ticket = get_ticket_for(current_user, number)
    messages = thread_of(ticket, public_only=False)
    return render_template(
        "ticket.html",
        ticket=ticket,
        messages=[m for m in messages if m.kind != "event"],
        events=timeline(ticket, messages),
        candidates=reassign_candidates(ticket) if current_user.role == "admin" else [],
        html_of=safe_email_html,
        statuses=STATUSES,
        priorities=PRIORITIES,
        categories=Category.objects(active=True).distinct("name"),
        skills=Skill.objects(active=True).distinct("name"),
        now=utcnow(),
        **_time_helpers(),
    )


def _time_helpers() -> dict[str, object]:
    return {
        "is_overdue": work_queue.is_overdue,
        "customer_replied": work_queue.customer_replied,
        "relative": work_queue.relative,
    }


def _back(number: int, message: str) -> Response:
    flash(message)
    return redirect(url_for("moderator.ticket", number=number))


@bp.post("/tickets/<int:number>/reply")
@staff_required
def reply(number: int) -> Response:
    ticket = get_ticket_for(current_user, number)
    ticket_actions.reply(ticket, current_user, form_text("text", max_length=50_000), _settings())
    return _back(number, "Reply sent to the requester.")


@bp.post("/tickets/<int:number>/note")
@staff_required
def note(number: int) -> Response:
    ticket = get_ticket_for(current_user, number)
    ticket_actions.add_note(ticket, current_user, form_text("text", max_length=50_000), _settings())
    return _back(number, "Internal note added.")


@bp.post("/tickets/<int:number>/status")
@staff_required
def status(number: int) -> Response:
    ticket = get_ticket_for(current_user, number)
    ticket_actions.change_status(ticket, current_user, form_choice("status", STATUSES), _settings())
    return _back(number, f"Status is now {ticket.status}.")


@bp.post("/tickets/<int:number>/escalate")
@staff_required
def escalate(number: int) -> Response:
    ticket = get_ticket_for(current_user, number)
    ticket_actions.escalate(ticket, current_user, form_text("reason", max_length=2000), _settings())
    who = ticket.assignee.email if ticket.assignee else "no admin (none is active)"
    return _back_or_queue(ticket, f"Escalated: the admins were emailed; the ticket is now with {who}.")


@bp.post("/tickets/<int:number>/assign")
@admin_required
def assign(number: int) -> Response:
    ticket = get_ticket_for(current_user, number)
    address = request.form.get("assignee", "").strip()
    assignee = User.by_email(address) if address else None
    if assignee is None or not assignee.is_staff or not assignee.active:
        raise BadRequest("Pick an active moderator or admin.")
    ticket_actions.assign(
        ticket, current_user, assignee, form_text("reason", max_length=500, required=False), _settings()
    )
    return _back(number, f"Assigned to {assignee.email}.")


@bp.post("/tickets/<int:number>/deescalate")
@admin_required
def deescalate(number: int) -> Response:
    ticket = get_ticket_for(current_user, number)
    if not ticket.escalated:
        raise BadRequest("This ticket is not escalated.")
    ticket_actions.deescalate(ticket, current_user, form_text("reason", max_length=2000, required=False), _settings())
    return _back(number, "De-escalated: the ticket is open again.")


@bp.post("/tickets/<int:number>/handback")
@staff_required
def hand_back(number: int) -> Response:
    ticket = get_ticket_for(current_user, number)
    if ticket.assignee is None:
        raise BadRequest("Nobody has this ticket: routing will pick it up.")
    if current_user.role != "admin" and ticket.assignee != current_user:
        raise Forbidden("Only its assignee or an admin can hand a ticket back.")
    ticket_actions.hand_back(ticket, current_user, _settings())
    return _back_or_queue(ticket, f"#{number} went back to routing; the daemon assigns it again shortly.")


def _back_or_queue(ticket: Ticket, message: str) -> Response:
    """Back to the ticket when the user may still see it, else to the queue."""
    flash(message)
    if can_view(current_user, ticket):
        return redirect(url_for("moderator.ticket", number=ticket.number))
    return redirect(url_for("moderator.queue"))


@bp.post("/tickets/<int:number>/take")
@staff_required
def take(number: int) -> Response:
    ticket = get_ticket_for(current_user, number)
    if not ticket_actions.take(ticket, current_user, _settings()):
        raise BadRequest("Someone has this ticket already.")
    return _back(number, "The ticket is yours.")


@bp.post("/tickets/<int:number>/triage")
@staff_required
def triage(number: int) -> Response:
    ticket = get_ticket_for(current_user, number)
    categories = tuple(Category.objects.distinct("name"))
    known_skills = set(Skill.objects.distinct("name"))
    skills = normalise_skills(request.form.getlist("required_skills"))
    if set(skills) - known_skills:
        raise BadRequest("Unknown skill.")
    changed = ticket_actions.correct_triage(
        ticket,
        current_user,
        _settings(),
        category=form_choice("category", categories, allow_empty=True) or None,
        priority=form_choice("priority", PRIORITIES),
        required_skills=skills,
    )
    return _back(number, f"Updated {', '.join(changed)}." if changed else "Nothing changed.")


@bp.get("/tickets/<int:number>/attachments/<message_id>/<int:index>")
@staff_required
def attachment(number: int, message_id: str, index: int) -> Response:
    ticket = get_ticket_for(current_user, number)
    try:
        message = TicketMessage.objects(id=ObjectId(message_id)).first()  # by `_id` alone: indexed on FerretDB
        if message is not None and message.ticket_number != ticket.number:
            message = None
    except InvalidId:
        message = None
    if message is None or index >= len(message.attachments) or not message.attachments[index].file:
        raise NotFound("No such attachment.")
    ref = message.attachments[index]
    stream = ref.file.get()
    if stream is None:
        raise NotFound("The attachment's content is missing.")
    return send_file(
        stream,
        mimetype="application/octet-stream",  # never rendered inline: it is untrusted content
        as_attachment=True,
        download_name=ref.filename or "attachment",
    )


@bp.route("/me/skills", methods=["GET", "POST"])
@staff_required
def my_skills() -> str | Response:
    available = list(Skill.objects(active=True).order_by("name").distinct("name"))
    if request.method == "POST":
        if current_user.role != "admin":  # skills are granted by admins (README "Security model")
            raise Forbidden("Skills are granted by an admin.")
        chosen = normalise_skills(request.form.getlist("skills"))
        if set(chosen) - set(Skill.objects.distinct("name")):
            raise BadRequest("Unknown skill.")
        old = list(current_user.skills)
        current_user.skills = chosen
        current_user.save()
        record_audit(current_user.email, "skills_change", f"user:{current_user.email}", detail=f"{old} -> {chosen}")
        flash("Your skills were saved.")
        return redirect(url_for("moderator.my_skills"))
    return render_template("skills.html", available=sorted(set(available) | set(current_user.skills)))
