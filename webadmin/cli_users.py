"""`flask --app webadmin users ...` and `skills ...`: manage people and skills from a shell."""

from __future__ import annotations

import click
from mongoengine import NotUniqueError

from models import ROLES, Skill, User, record_audit
from models.users import MIN_PASSWORD_LENGTH, normalise_skills

CLI_ACTOR = "cli"


def _parse_skills(raw: str) -> list[str]:
    return normalise_skills(raw.split(",")) if raw else []


def _get_user(email: str) -> User:
    user = User.by_email(email)
    if user is None:
        raise click.ClickException(f"no user with email {email!r}")
    return user


def _ensure_skills_exist(names: list[str]) -> None:
    for name in names:
        if not Skill.objects(name=name).first():
            Skill(name=name).save()


@click.group("users", help="Create and manage users.")
def users_cli() -> None:
    pass


@users_cli.command("create")
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice(ROLES, case_sensitive=False))
@click.option("--password", default="", help=f"at least {MIN_PASSWORD_LENGTH} characters; required for staff")
@click.option("--name", default="")
@click.option("--skills", default="", help="comma-separated, e.g. billing,postgres")
def create_user(email: str, role: str, password: str, name: str, skills: str) -> None:
    role = role.lower()
    if "@" not in email:
        raise click.ClickException(f"not an email address: {email!r}")
    if role != "user" and not password:
        raise click.ClickException(f"a {role} needs a --password")
    user = User(email=email, role=role, name=name, skills=_parse_skills(skills))
    if password:
        try:
            user.set_password(password)
        except ValueError as exc:
            raise click.ClickException(f"weak password: {exc}") from None
    try:
        user.save()
    except NotUniqueError:
        raise click.ClickException(f"a user with email {user.email!r} already exists") from None
    _ensure_skills_exist(user.skills)
    record_audit(CLI_ACTOR, "user_create", f"user:{user.email}", detail=f"role={role}")
    click.echo(f"created {user.role} {user.email}")


@users_cli.command("list")
@click.option("--role", type=click.Choice(ROLES, case_sensitive=False))
def list_users(role: str | None) -> None:
    query = User.objects(role=role.lower()) if role else User.objects
    for user in query.order_by("email"):
        state = "active" if user.active else "inactive"
        click.echo(f"{user.email}\t{user.role}\t{state}\t{','.join(user.skills)}")


@users_cli.command("set-role")
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice(ROLES, case_sensitive=False))
@click.option("--reason", default="")
def set_role(email: str, role: str, reason: str) -> None:
    user = _get_user(email)
    old, user.role = user.role, role.lower()
    if user.role != "user" and not user.password_hash:
        raise click.ClickException(f"{user.email} has no password; create staff with users create --password")
    user.save()
    record_audit(CLI_ACTOR, "role_change", f"user:{user.email}", detail=f"{old} -> {user.role}", reason=reason)
    click.echo(f"{user.email}: {old} -> {user.role}")


@users_cli.command("set-skills")
@click.option("--email", required=True)
@click.option("--skills", required=True, help="comma-separated; replaces the current skills")
def set_skills(email: str, skills: str) -> None:
    user = _get_user(email)
    old = list(user.skills)
    user.skills = _parse_skills(skills)
    user.save()
    _ensure_skills_exist(user.skills)
    record_audit(CLI_ACTOR, "skills_change", f"user:{user.email}", detail=f"{old} -> {user.skills}")
    click.echo(f"{user.email}: {','.join(user.skills) or '(none)'}")


@users_cli.command("deactivate")
@click.option("--email", required=True)
@click.option("--reason", default="")
def deactivate(email: str, reason: str) -> None:
    user = _get_user(email)
    user.active = False
    user.save()
    record_audit(CLI_ACTOR, "deactivate", f"user:{user.email}", reason=reason)
    click.echo(f"deactivated {user.email}")


@click.group("skills", help="Manage the skills vocabulary used by triage and routing.")
def skills_cli() -> None:
    pass


@skills_cli.command("add")
@click.argument("name")
@click.option("--description", default="")
@click.option("--keywords", default="", help="comma-separated words that suggest this skill")
def add_skill(name: str, description: str, keywords: str) -> None:
    skill = Skill(name=name, description=description, keywords=keywords.split(",") if keywords else [])
    try:
        skill.save()
    except NotUniqueError:
        raise click.ClickException(f"skill {skill.name!r} already exists") from None
    click.echo(f"added skill {skill.name}")


@skills_cli.command("list")
def list_skills() -> None:
    for skill in Skill.objects.order_by("name"):
        click.echo(f"{skill.name}\t{skill.description}")
