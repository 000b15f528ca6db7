"""The web app and the daemon meet only in the database: nothing under webadmin/ imports daemon/, nor
the in-memory ticket index or change journal of the old embedded server."""

from __future__ import annotations

import ast
import pathlib

WEBADMIN = pathlib.Path(__file__).resolve().parents[1] / "webadmin"
FORBIDDEN = ("daemon", "models.ticket_index", "models.journal")


def _imports(path: pathlib.Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def test_webadmin_imports_nothing_from_the_daemon_or_the_old_index() -> None:
    files = sorted(WEBADMIN.rglob("*.py"))
    assert len(files) > 20
    found = [
        f"{path.relative_to(WEBADMIN.parent)}: {name}"
        for path in files
        for name in _imports(path)
        if any(name == bad or name.startswith(f"{bad}.") for bad in FORBIDDEN)
    ]
    assert found == []
