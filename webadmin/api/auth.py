"""POST /api/auth/login, /refresh, /logout and GET /api/me, PATCH /api/me/skills."""

from __future__ import annotations

import logging

from flask_jwt_extended import current_user, decode_token, get_jwt, verify_jwt_in_request
from flask_smorest import abort

from models import Skill, User, record_audit
from models.users import normalise_skills
from webadmin.api import bp
from webadmin.api.schemas import (
    AccessTokenSchema,
    LoginSchema,
    LogoutSchema,
    MessageSchema,
    SkillsSchema,
    TokensSchema,
    UserSchema,
)
from webadmin.security import (
    BAD_CREDENTIALS,
    admin_required,
    any_user_required,
    authenticate,
    check_login_rate,
    issue_tokens,
    renewed_access_token,
    revoke,
)

logger = logging.getLogger(__name__)
BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]


def user_dict(user: User) -> dict:
    return {
        "id": str(user.id),
        "email": user.email,
        "name": user.name or "",
        "role": user.role,
        "skills": list(user.skills or []),
        "active": bool(user.active),
    }


@bp.post("/auth/login")
@bp.arguments(LoginSchema)
@bp.response(200, TokensSchema)
@bp.alt_response(401, schema=MessageSchema, description="Invalid email or password")
@bp.alt_response(429, schema=MessageSchema, description="Too many login attempts")
def login(credentials: dict) -> dict:
    """Exchange email and password for an access token and a refresh token."""
    check_login_rate(credentials["email"])
    user = authenticate(credentials["email"], credentials["password"])
    if user is None:
        logger.info("failed API login")
        abort(401, message=BAD_CREDENTIALS)
    # flask_smorest is untyped, so mypy does not see that its abort() never returns.
    access, refresh = issue_tokens(user)  # type: ignore[arg-type]
    return {"access_token": access, "refresh_token": refresh, "token_type": "Bearer"}


@bp.post("/auth/refresh")
@bp.response(200, AccessTokenSchema)
@bp.doc(security=BEARER, description="Send the refresh token as the bearer token.")
def refresh() -> dict:
    """A new access token for a valid, unrevoked refresh token of an active user."""
    verify_jwt_in_request(refresh=True, locations=["headers"])
    token = renewed_access_token(current_user, get_jwt())
    return {"access_token": token, "token_type": "Bearer"}


@bp.post("/auth/logout")
@bp.arguments(LogoutSchema, required=False)
@bp.response(200, MessageSchema)
@bp.doc(security=BEARER)
def logout(body: dict) -> dict:
    """Revoke the access token (and the refresh token, when given)."""
    verify_jwt_in_request(locations=["headers"])
    revoke(get_jwt())
    if body.get("refresh_token"):
        try:
            claims = decode_token(body["refresh_token"])
        except Exception:  # a bad refresh token changes nothing; the access token is revoked already
            abort(422, message="refresh_token is not a valid token")
        if claims.get("sub") != get_jwt()["sub"]:
            abort(422, message="refresh_token belongs to another user")
        revoke(claims)
    return {"message": "logged out"}


@bp.get("/me")
@any_user_required
@bp.response(200, UserSchema)
@bp.doc(security=BEARER)
def me() -> dict:
    """The signed-in user."""
    return user_dict(current_user)


@bp.patch("/me/skills")
@admin_required
@bp.arguments(SkillsSchema)
@bp.response(200, UserSchema)
@bp.doc(security=BEARER)
def my_skills(body: dict) -> dict:
    """Replace the signed-in admin's own skills. Skills are granted by admins: a moderator may not
    change their own (they decide which unassigned tickets a moderator may take)."""
    skills = normalise_skills(body["skills"])
    unknown = sorted(set(skills) - set(Skill.objects(name__in=skills).distinct("name"))) if skills else []
    if unknown:
        abort(422, errors={"json": {"skills": [f"Unknown skill: {name}" for name in unknown]}})
    old = list(current_user.skills)
    current_user.skills = skills
    current_user.save()
    record_audit(current_user.email, "skills_change", f"user:{current_user.email}", detail=f"{old} -> {skills}")
    return user_dict(current_user)
