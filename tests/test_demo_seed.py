"""`flask --app webadmin demo seed`, which `make dev` runs."""

from models import Skill, User
from webadmin import create_app


def test_demo_seed_is_idempotent_and_its_moderators_cover_every_default_skill(settings):
    """Regression: the demo moderators' skills missed most default skills, so demo mail was escalated."""
    cli = create_app(settings).test_cli_runner()
    first = cli.invoke(args=["demo", "seed"])
    assert first.exit_code == 0, first.output
    assert cli.invoke(args=["demo", "seed"]).exit_code == 0
    staff = User.objects(role__in=["moderator", "admin"])
    assert sorted(u.email for u in staff) == [
        "admin@example.test",
        "billing@example.test",
        "data@example.test",
        "network@example.test",
    ]
    covered = {skill for user in staff if user.role == "moderator" for skill in user.skills}
    assert {s.name for s in Skill.objects(active=True)} <= covered
    assert User.by_email("billing@example.test").check_password("demo-password-123")
