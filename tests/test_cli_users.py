"""`flask --app webadmin users|skills ...` as an operator would use it."""

import pytest

from models import AuditEvent, Skill, User
from webadmin import create_app


@pytest.fixture()
def cli(settings):
    return create_app(settings).test_cli_runner()


def test_create_list_and_change_a_moderator(cli):
    result = cli.invoke(
        args=[
            "users",
            "create",
            "--email",
            "Mo@Example.com",
            "--role",
            "moderator",
            "--password",
            "long enough pw",
            "--skills",
            "Billing, postgres",
        ]
    )
    assert result.exit_code == 0, result.output
    user = User.by_email("mo@example.com")
    assert user.skills == ["billing", "postgres"]
    assert {s.name for s in Skill.objects} == {"billing", "postgres"}

    listed = cli.invoke(args=["users", "list"]).output
    assert "mo@example.com\tmoderator\tactive\tbilling,postgres" in listed

    assert cli.invoke(args=["users", "set-role", "--email", "mo@example.com", "--role", "admin"]).exit_code == 0
    assert cli.invoke(args=["users", "set-skills", "--email", "mo@example.com", "--skills", "sso"]).exit_code == 0
    assert cli.invoke(args=["users", "deactivate", "--email", "mo@example.com"]).exit_code == 0
    user.reload()
    assert (user.role, user.skills, user.active) == ("admin", ["sso"], False)
    actions = [event.action for event in AuditEvent.objects.order_by("at")]
    assert actions == ["user_create", "role_change", "skills_change", "deactivate"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "wizard", "--password", "long enough pw"], "Invalid value for '--role'"),
        (["--role", "moderator", "--password", "short"], "weak password"),
        (["--role", "moderator"], "needs a --password"),
    ],
)
def test_create_refuses_bad_input_with_a_clear_error(cli, args, message):
    result = cli.invoke(args=["users", "create", "--email", "x@example.com", *args])
    assert result.exit_code != 0
    assert message in result.output
    assert User.objects.count() == 0


def test_duplicate_email_is_refused(cli):
    args = ["users", "create", "--email", "x@example.com", "--role", "user"]
    assert cli.invoke(args=args).exit_code == 0
    result = cli.invoke(args=["users", "create", "--email", "X@example.com", "--role", "user"])
    assert result.exit_code != 0
    assert "already exists" in result.output


def test_unknown_user_and_duplicate_skill(cli):
    result = cli.invoke(args=["users", "set-role", "--email", "nobody@example.com", "--role", "admin"])
    assert result.exit_code != 0 and "no user with email" in result.output
    assert cli.invoke(args=["skills", "add", "Networking", "--keywords", "vpn,dns"]).exit_code == 0
    assert Skill.objects.get(name="networking").keywords == ["vpn", "dns"]
    result = cli.invoke(args=["skills", "add", "networking"])
    assert result.exit_code != 0 and "already exists" in result.output
    assert "networking" in cli.invoke(args=["skills", "list"]).output
