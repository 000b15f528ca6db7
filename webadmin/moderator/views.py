"""Server-rendered pages for moderators (and admins): the queue, a ticket, actions, my skills."""

from __future__ import annotations

import logging

from bson import ObjectId
from bson.errors import InvalidId
from flask import current_app, flash, redirect, render_template, request, send_file, url_for
from flask_jwt_extended import current_user
from werkzeug.exceptions import BadRequest, Forbidden, NotFound
from werkzeug.wrappers import Response

from models import PRIORITIES, STATUSES, Category, Skill, TicketMessage, record_audit
from models.users import normalise_skills
from webadmin import ticket_actions
from webadmin.forms import arg_choice, arg_int, form_choice, form_text
from webadmin.moderator import bp
from webadmin.sanitize import safe_email_html
from webadmin.security import staff_required
from webadmin.tickets import TicketFilters, get_ticket_for, list_tickets, thread_of

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
    filters = TicketFilters(
        status=arg_choice("status", (*STATUSES, "active")) if "status" in request.args else "active",
        priority=arg_choice("priority", PRIORITIES),
        category=arg_choice("category", categories),
        search=request.args.get("q", "").replace("\x00", "").strip()[:200],
        scope=arg_choice("scope", ("mine", "unassigned")),
    )
    page = list_tickets(current_user, filters, arg_int("page", 1, 1, 100_000), arg_int("per_page", 25, 5, 100))
    pager_args = {
        k: v for k, v in request.args.items() if k in ("status", "priority", "category", "q", "scope", "per_page")
    }
    return render_template(
        "queue.html",
        page=page,
        pager_args=pager_args,
        filters=filters,
        statuses=STATUSES,
        priorities=PRIORITIES,
        categories=categories,
    )


@bp.get("/tickets/<int:number>")
@staff_required
def ticket(number: int) -> str:
    ticket = get_ticket_for(current_user, number)
    messages = thread_of(ticket, public_only=False)
    return render_template(
        "ticket.html",
        ticket=ticket,
        messages=messages,
        html_of=safe_email_html,
        statuses=STATUSES,
        priorities=PRIORITIES,
        categories=Category.objects(active=True).distinct("name"),
        skills=Skill.objects(active=True).distinct("name"),
    )


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
    return _back(number, "Escalated to the admins.")


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
