"""Test fixtures: real FerretDB (v2, on PostgreSQL + DocumentDB) and a real loopback mail stack, once per session.

The servers run on their own ports and data folders, so a running `make dev` stack is not disturbed.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import uuid

import mongoengine
import pytest

from config import Settings, load_settings
from models import connect_db, ensure_all_indexes
from tests.support import MailStack

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"

# TEST_SLOT (0-9) lets several test runs share a machine, each with its own ports and folders.
TEST_SLOT = int(os.environ.get("TEST_SLOT", "0"))
TEST_DB_PORT = 27019 + TEST_SLOT
_BASE_MAIL_PORTS = {
    "IMAP_PORT": 11143,
    "IMAPS_PORT": 11993,
    "LMTP_PORT": 11024,
    "SMTP_IN_PORT": 11026,
    "SINK_PORT": 11025,
}
TEST_MAIL_PORTS = {name: port + 1000 * TEST_SLOT for name, port in _BASE_MAIL_PORTS.items()}
TEST_MAIL_DIR = f"/tmp/helpdesk-test-mail-{uuid.uuid5(uuid.NAMESPACE_URL, str(ROOT)).hex[:8]}-{TEST_SLOT}"


def _script(name: str, action: str, extra_env: dict[str, str]) -> None:
    env = {**os.environ, **extra_env, "PYTHON": str(ROOT / ".venv" / "bin" / "python")}
    result = subprocess.run(["bash", str(ROOT / "scripts" / name), action], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"scripts/{name} {action} failed:\n{result.stdout}\n{result.stderr}")


@pytest.fixture(scope="session")
def db_server() -> str:
    """The MongoDB URI tests use: TEST_MONGO_URI if set (e.g. real MongoDB), else embedded FerretDB."""
    uri = os.environ.get("TEST_MONGO_URI")
    if uri:
        yield uri
        return
    env = {"DB_DIR": str(ROOT / ".cache" / f"test-db-{TEST_SLOT}"), "DB_PORT": str(TEST_DB_PORT)}
    _script("db.sh", "purge", env)
    _script("db.sh", "start", env)
    yield f"mongodb://127.0.0.1:{TEST_DB_PORT}/"
    _script("db.sh", "purge", env)


@pytest.fixture(scope="session")
def mail_server() -> MailStack:
    env = {"MAIL_DIR": TEST_MAIL_DIR, **{k: str(v) for k, v in TEST_MAIL_PORTS.items()}}
    _script("mail.sh", "start", env)
    yield MailStack(
        directory=pathlib.Path(TEST_MAIL_DIR),
        imap_port=TEST_MAIL_PORTS["IMAP_PORT"],
        imaps_port=TEST_MAIL_PORTS["IMAPS_PORT"],
        smtp_in_port=TEST_MAIL_PORTS["SMTP_IN_PORT"],
        sink_port=TEST_MAIL_PORTS["SINK_PORT"],
    )
    _script("mail.sh", "purge", env)


@pytest.fixture()
def db(db_server: str) -> str:
    """A connected, empty database for one test. Returns its URI."""
    uri = db_server.rstrip("/") + "/helpdesk_test"
    connect_db(uri)
    database = mongoengine.get_db()
    for name in database.list_collection_names():
        database[name].delete_many({})
    ensure_all_indexes()
    yield uri
    mongoengine.disconnect()


@pytest.fixture()
def mail(mail_server: MailStack) -> MailStack:
    """The mail stack with an empty support mailbox and an empty sink."""
    mail_server.reset()
    return mail_server


@pytest.fixture()
def settings(db: str, mail_server: MailStack) -> Settings:
    return make_settings(db, mail_server)


def make_settings(mongo_uri: str, mail_stack: MailStack, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "secret_key": "test-secret-key-0123456789-abcdefgh",
        "jwt_secret_key": "test-jwt-secret-key-0123456789-abcdef",
        "mongo_uri": mongo_uri,
        "imap_host": "127.0.0.1",
        "imap_port": mail_stack.imap_port,
        "imap_user": "support@example.test",
        "imap_password": "password",
        "imap_security": "none",
        "mail_server": "127.0.0.1",
        "mail_port": mail_stack.sink_port,
        "mail_default_sender": "support@example.test",
        "support_address": "support@example.test",
        "app_url": "http://127.0.0.1:5000",
        "triage_provider": "local",
        "model_dir": str(ROOT / ".cache" / f"test-triage-model-{TEST_SLOT}"),
    }
    values.update(overrides)
    return load_settings(environ={}, env_file=None, **values)


@pytest.fixture()
def corpus() -> pathlib.Path:
    if not (CORPUS / "emails").is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS} (it lives beside the project, read-only)")
    return CORPUS
