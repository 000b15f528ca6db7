"""Settings: typed values from the environment, one clear line for a bad one."""

import pytest

from config import SettingsError, load_settings

BASE = {"SECRET_KEY": "s" * 32, "JWT_SECRET_KEY": "j" * 32}


def test_values_are_converted_to_their_types():
    settings = load_settings({**BASE, "IMAP_PORT": "993", "MAIL_USE_TLS": "yes", "IMAP_SECURITY": "SSL"}, env_file=None)
    assert settings.imap_port == 993
    assert settings.mail_use_tls is True
    assert settings.imap_security == "ssl"


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"IMAP_PORT": "abc"}, "IMAP_PORT"),
        ({"IMAP_SECURITY": "tls13"}, "IMAP_SECURITY"),
        ({"TRIAGE_PROVIDER": "openai"}, "TRIAGE_PROVIDER"),
        ({"MAIL_USE_TLS": "maybe"}, "MAIL_USE_TLS"),
        ({"MONGO_URI": "postgres://x"}, "MONGO_URI"),
        ({"SLA_HOURS": "high=8"}, "SLA_HOURS"),
        ({"TRIAGE_PROVIDER": "gemini"}, "GEMINI_API_KEY"),
    ],
)
def test_bad_value_names_the_variable_in_one_line(env, names):
    with pytest.raises(SettingsError) as info:
        load_settings({**BASE, **env}, env_file=None)
    message = str(info.value)
    assert message.startswith(names + ":")
    assert "\n" not in message


def test_missing_secret_is_reported():
    with pytest.raises(SettingsError, match="^JWT_SECRET_KEY: is required"):
        load_settings({"SECRET_KEY": "x"}, env_file=None)


def test_dotenv_file_is_read_and_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    secret = "from-file-" + "f" * 30
    env_file.write_text(f"SECRET_KEY={secret}\nJWT_SECRET_KEY=jwt-file-{'j' * 30}\nPOLL_INTERVAL_SECONDS=7\n")
    settings = load_settings({"POLL_INTERVAL_SECONDS": "9"}, env_file=str(env_file))
    assert settings.secret_key == secret
    assert settings.poll_interval_seconds == 9


def test_sla_hours_parse():
    settings = load_settings({**BASE, "SLA_HOURS": "low=48,medium=12,high=4,urgent=1"}, env_file=None)
    assert settings.sla_hours == {"low": 48.0, "medium": 12.0, "high": 4.0, "urgent": 1.0}


def test_env_example_documents_every_setting():
    """Every setting has a line in .env.example, and .env.example names no setting that does not exist."""
    import pathlib
    import re
    from dataclasses import fields

    from config import Settings

    text = (pathlib.Path(__file__).resolve().parent.parent / ".env.example").read_text()
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", text, re.M))
    known = {spec.name.upper() for spec in fields(Settings)}
    assert known - documented == set()
    assert documented - known == set()


def test_to_environ_round_trips_every_setting():
    """Child processes (run_daemon.py in tests and benchmarks) get exactly the parent's settings."""
    from config import to_environ

    settings = load_settings(
        {**BASE, "MAIL_USE_TLS": "true", "IMAP_PORT": "993", "SLA_HOURS": "low=48,medium=12,high=4,urgent=0.5"},
        env_file=None,
    )
    assert load_settings(to_environ(settings), env_file=None) == settings


def test_log_level_from_env_example_is_accepted():
    """Regression: LOG_LEVEL was lower-cased, then compared with upper-case names, so any value failed."""
    assert load_settings({**BASE, "LOG_LEVEL": "info"}, env_file=None).log_level == "INFO"
    assert load_settings({**BASE, "LOG_LEVEL": "WARNING"}, env_file=None).log_level == "WARNING"
