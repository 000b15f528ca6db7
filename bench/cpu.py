"""CPU used on the whole machine and by each program, from /proc: where a benchmark's seconds went."""

from __future__ import annotations

import os
import pathlib


def cpu_by_program() -> dict[str, float]:
    """CPU seconds (user + system) used so far by each program on the machine, from /proc (processes that have
    exited are not counted: PostgreSQL backends and Dovecot's imap processes live for their connection)."""
    ticks = os.sysconf("SC_CLK_TCK")
    totals: dict[str, float] = {}
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            cmdline = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        name, rest = text[text.index("(") + 1 : text.rindex(")")], text.rsplit(")", 1)[1].split()
        if name.startswith("python") or name == "gunicorn":
            script_name = next((a.decode() for a in cmdline[1:] if a.endswith((b".py", b"gunicorn"))), name)
            name = pathlib.Path(script_name).name
        totals[name] = totals.get(name, 0.0) + (int(rest[11]) + int(rest[12])) / ticks
    return totals


def cpu_used(before: dict[str, float], after: dict[str, float], top: int = 8) -> dict[str, float]:
    """The programs that used the most CPU between two `cpu_by_program` snapshots, in seconds."""
    used = {name: after[name] - before.get(name, 0.0) for name in after}
    return {name: round(seconds, 1) for name, seconds in sorted(used.items(), key=lambda kv: -kv[1])[:top]}


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot (/proc/stat: everything but idle and iowait), counting
    processes that come and go (Dovecot's, the parser's) and the kernel's work for them."""
    fields = [int(v) for v in pathlib.Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    steal = fields[7] if len(fields) > 7 else 0  # time the host gave to others: not ours
    return (sum(fields[:8]) - idle - steal) / os.sysconf("SC_CLK_TCK")
