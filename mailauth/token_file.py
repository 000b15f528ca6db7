"""The refresh token on disk: one line in a file only its owner can read, replaced atomically."""

from __future__ import annotations

import os
import pathlib
import tempfile


def read_refresh_token(path: str) -> str:
    """The stored refresh token, or "" when the file does not exist yet."""
    try:
        return pathlib.Path(path).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return ""


def write_refresh_token(path: str, token: str) -> None:
    """Store `token` at `path` (mode 0600, folder 0700 when created); a reader never sees half a file."""
    target = pathlib.Path(path)
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")  # mkstemp: mode 0600
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(token.strip() + "\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        pathlib.Path(temporary).unlink(missing_ok=True)
        raise
