# ruff: noqa: F811 - pytest fixtures imported from tests.web_support
"""Schemathesis generates requests from /api/openapi.json against the served app: never a 500."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

from models import Skill
from tests.web_support import app, bearer, make_ticket, make_user, served  # noqa: F401

SCHEMATHESIS = pathlib.Path(sys.executable).with_name("schemathesis")


@pytest.mark.slow
@pytest.mark.parametrize("role", ["admin", "moderator", "user"])  # a customer (user) exercises POST /api/tickets
def test_generated_requests_never_cause_a_server_error(app, db, role: str, tmp_path: pathlib.Path) -> None:
    Skill(name="vpn").save()
    user = make_user(f"{role}@example.test", role=role, skills=("vpn",))
    for i in range(3):
        make_ticket(subject=f"Ticket {i}", assignee=user if i else None, required_skills=("vpn",))
    headers = bearer(app, user)
    with served(app) as base:
        result = subprocess.run(
            [
                str(SCHEMATHESIS),
                "run",
                f"{base}/api/openapi.json",
                "--url",
                base,
                "-H",
                f"Authorization: {headers['Authorization']}",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                "25",
                "--seed",
                "1",
                "--exclude-path",
                "/api/auth/logout",  # it would revoke the token the rest of the run uses
                "--report-dir",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=500,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    tested = re.search(r"Tested:\s+(\d+)", output)
    assert tested and int(tested.group(1)) >= 13, output[-2000:]  # every operation but logout was exercised
