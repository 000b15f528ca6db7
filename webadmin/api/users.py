"""Admin user management: GET /api/users, PATCH /api/users/<id>."""

from __future__ import annotations

from bson import ObjectId
from bson.errors import InvalidId
from flask import current_app
from flask_jwt_extended import current_user
from flask_smorest import abort
from flask_smorest.pagination import PaginationParameters

from models import Skill, User, record_audit
from models.users import normalise_skills
from webadmin.api import bp
from webadmin.api.auth import BEARER, user_dict
from webadmin.api.schemas import UserPatchSchema, UserQuerySchema, UserSchema
from webadmin.security import admin_required
from webadmin.ticket_actions import reroute_open_tickets_of


@bp.get("/users")
@admin_required
@bp.arguments(UserQuerySchema, location="query")
@bp.response(200, UserSchema(many=True))
@bp.paginate(page_size=50, max_page_size=100)
@bp.doc(security=BEARER)
def users(query: dict, pagination_parameters: PaginationParameters) -> list[dict]:
    """Users by email, a page at a time (`X-Pagination` header), optionally of one role. Admins only."""
    found = User.objects(role=query["role"]) if query.get("role") else User.objects  # index `role, email` / `email`
    pagination_parameters.item_count = total = found.count()
    first = pagination_parameters.first_item
    if first >= total:  # past the end (also a page number too large for the database's skip)
        return []
    return [user_dict(u) for u in found.order_by("email").skip(first).limit(pagination_parameters.page_size)]


@bp.patch("/users/<user_id>")
@admin_required
@bp.arguments(UserPatchSchema)
@bp.response(200, UserSchema)
@bp.doc(security=BEARER)
def patch_user(body: dict, user_id: str) -> dict:
    """Change a user's name, role, skills or active flag; role and activation changes are audited."""
    try:
        user = User.objects(id=ObjectId(user_id)).first()
    except (InvalidId, TypeError):
        user = None
    if user is None:
        abort(404, message="No such user.")
    reason = body.get("reason", "")
    if "role" in body and body["role"] != "user" and not user.password_hash:
        abort(422, errors={"json": {"role": ["Staff need a password; set one first."]}})
    if user.id == current_user.id and (body.get("active") is False or body.get("role", "admin") != "admin"):
        abort(422, message="You cannot demote or deactivate yourself.")
    if "skills" in body:
        skills = normalise_skills(body["skills"])
        unknown = sorted(set(skills) - set(Skill.objects(name__in=skills).distinct("name"))) if skills else []
        if unknown:
            abort(422, errors={"json": {"skills": [f"Unknown skill: {name}" for name in unknown]}})
        if skills != user.skills:
            record_audit(current_user.email, "skills_change", f"user:{user.email}", detail=f"{user.skills} -> {skills}")
        user.skills = skills
    if "name" in body:
        user.name = body["name"].replace("\x00", "")
    lost_staff = False
    if "role" in body and body["role"] != user.role:
        record_audit(
            current_user.email,
            "role_change",
            f"user:{user.email}",
            detail=f"{user.role} -> {body['role']}",
            reason=reason,
        )
        lost_staff = user.is_staff and body["role"] == "user"
        user.role = body["role"]
    if "active" in body and body["active"] != user.active:
        record_audit(
            current_user.email, "activate" if body["active"] else "deactivate", f"user:{user.email}", reason=reason
        )
        lost_staff = lost_staff or not body["active"]
        user.active = body["active"]
    user.save()
    if lost_staff:
        reroute_open_tickets_of(user, current_user, current_app.extensions["settings"])
    return user_dict(user)
