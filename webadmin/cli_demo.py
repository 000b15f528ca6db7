"""`flask --app webadmin demo seed`: demo staff for `make dev` (idempotent)."""

from __future__ import annotations

import click

from models import Skill, User, record_audit
from triage.taxonomy import ensure_default_taxonomy

DEMO_STAFF = (
    ("admin@example.test", "Ada Admin", "admin", ()),
    # Between them the moderators cover the default skills (triage/taxonomy.py), so demo mail gets routed.
    ("billing@example.test", "Bea Billing", "moderator", ("payments", "refunds", "accounts", "logistics")),
    (
        "network@example.test",
        "Nico Network",
        "moderator",
        ("networking", "vpn", "sso", "accounts", "security", "email", "troubleshooting"),
    ),
    (
        "data@example.test",
        "Dana Data",
        "moderator",
        ("database", "postgres", "backup", "integrations", "hardware", "troubleshooting"),
    ),
)


@click.group("demo", help="Demo data for local development.")
def demo_cli() -> None:
    pass


@demo_cli.command("seed")
@click.option("--password", default="demo-password-123", show_default=True, help="password of every demo account")
def seed(password: str) -> None:
    """Create the demo admin and three moderators (skips accounts that exist)."""
    ensure_default_taxonomy()
    for email, name, role, skills in DEMO_STAFF:
        for skill in skills:
            if not Skill.objects(name=skill).first():
                Skill(name=skill).save()
        if User.by_email(email):
            click.echo(f"exists  {email}")
            continue
        user = User(email=email, name=name, role=role, skills=list(skills))
        try:
            user.set_password(password)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        user.save()
        record_audit("cli:demo", "user_create", f"user:{email}", detail=f"role={role}")
        click.echo(f"created {role} {email}")
