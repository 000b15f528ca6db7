"""`flask --app webadmin mail mailboxes ...`: the support mailboxes kept in the database (issue 12, several
mailboxes). Credentials are asked for with a hidden prompt (or read from stdin), sealed with
MAILBOX_SECRET_KEY, and never printed."""

from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from config import Settings
from config.oauth import MAIL_AUTH_MODES, SASL_MECHANISMS
from config.settings import IMAP_SECURITY_MODES
from models import Category, Skill, utcnow
from models.mailboxes import SMTP_SECURITY_MODES, SupportMailbox
from models.oauth import MailGrant
from webadmin.cli import CliProblem


def secret_key() -> str:
    settings: Settings = current_app.extensions["settings"]
    if not settings.mailbox_secret_key:
        raise CliProblem(
            "set MAILBOX_SECRET_KEY first (python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')"
        )
    return settings.mailbox_secret_key


@click.group("mailboxes", help="Support mailboxes kept in the database (besides IMAP_* in the settings).")
def mailboxes_cli() -> None:
    pass


@mailboxes_cli.command("add")
@click.argument("address")
@click.option("--name", default="")
@click.option("--imap-host", required=True)
@click.option("--imap-port", default=993, show_default=True, type=click.IntRange(1, 65535))
@click.option("--imap-security", type=click.Choice(IMAP_SECURITY_MODES), default="ssl", show_default=True)
@click.option("--imap-user", default="", help="Default: the address.")
@click.option("--folder", default="INBOX", show_default=True)
@click.option("--processed-folder", default="")
@click.option("--auth", type=click.Choice(MAIL_AUTH_MODES), default="password", show_default=True)
@click.option("--sasl", type=click.Choice(SASL_MECHANISMS), default="xoauth2", show_default=True)
@click.option("--smtp-host", default="", help="Default: the settings' MAIL_SERVER (and its login).")
@click.option("--smtp-port", default=587, show_default=True, type=click.IntRange(1, 65535))
@click.option("--smtp-security", type=click.Choice(SMTP_SECURITY_MODES), default="starttls", show_default=True)
@click.option("--category", default="", help="Default category of its tickets.")
@click.option("--skill", "skills", multiple=True, help="Default required skill (repeat for several).")
@click.option("--signature", default="", help="Signature of its acknowledgements.")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin instead of a prompt.")
@with_appcontext
def mailboxes_add(address: str, password_stdin: bool, skills: tuple[str, ...], **fields: object) -> None:
    """Add a mailbox, or change one (its stored credential is kept unless a new one is given)."""
    key = secret_key()
    address = address.strip().lower()
    if "@" not in address:
        raise CliProblem(f"not an email address: {address!r}")
    if fields["category"] and not Category.objects(name=fields["category"]).first():
        raise CliProblem(f"no category {fields['category']!r}")
    unknown = sorted(set(skills) - {s.name for s in Skill.objects(name__in=list(skills))})
    if unknown:
        raise CliProblem(f"unknown skill(s): {', '.join(unknown)}")
    mailbox = SupportMailbox.objects(address=address).first() or SupportMailbox(address=address)
    renamed = {"folder": "imap_folder", "processed_folder": "imap_processed_folder", "sasl": "sasl_mechanism"}
    renamed |= {"category": "default_category", "signature": "ack_signature"}
    for name, value in fields.items():
        setattr(mailbox, renamed.get(name, name), value)
    mailbox.default_skills = list(skills)
    if mailbox.auth == "password":
        if password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = click.prompt("IMAP/SMTP password", hide_input=True, default="", show_default=False)
        if password:
            mailbox.set_secret(password, key)
        elif not mailbox.sealed_secret:
            raise CliProblem("a password mailbox needs a password")
    mailbox.updated_at = utcnow()
    mailbox.save()
    then = "" if mailbox.auth == "password" else f"; now run: flask --app webadmin mail authorize --mailbox {address}"
    click.echo(f"mailbox {address} saved{then}")


@mailboxes_cli.command("list")
@with_appcontext
def mailboxes_list() -> None:
    """Each mailbox: on or off, login, server and folder, whether a credential is stored, its grant's state."""
    grants = {g.account: g.state for g in MailGrant.objects}
    for mailbox in SupportMailbox.objects.order_by("address"):
        stored = "credential stored" if mailbox.sealed_secret else "no credential"
        grant = f", grant {grants[mailbox.login]}" if mailbox.auth == "oauth2" and mailbox.login in grants else ""
        state = "on " if mailbox.enabled else "off"
        click.echo(
            f"{state} {mailbox.address} ({mailbox.auth} as {mailbox.login}) "
            f"{mailbox.imap_host}:{mailbox.imap_port}/{mailbox.imap_folder}: {stored}{grant}"
        )


@mailboxes_cli.command("enable")
@click.argument("address")
@click.option("--off", is_flag=True, help="Disable it instead.")
@with_appcontext
def mailboxes_enable(address: str, off: bool) -> None:
    """Turn a mailbox on (or off with --off); the daemon stops reading a mailbox that is off."""
    if not SupportMailbox.objects(address=address.strip().lower()).update_one(
        set__enabled=not off, set__updated_at=utcnow()
    ):
        raise CliProblem(f"no mailbox {address}")
    click.echo(f"mailbox {address} {'off' if off else 'on'}")
