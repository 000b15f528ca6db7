"""Labelled ticket CSVs (subject, body, queue, priority, tags, language) for training and evaluation."""

from __future__ import annotations

import csv
import logging
import sys
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)
REQUIRED_COLUMNS = ("subject", "body", "queue", "priority")
OPTIONAL_COLUMNS = ("tags", "language")


class DatasetError(ValueError):
    """The file cannot be used; str() says why in one line."""


@dataclass
class LabelledTicket:
    subject: str
    body: str
    category: str
    priority: str
    skills: list[str]
    language: str = ""


@dataclass
class Dataset:
    rows: list[LabelledTicket]
    skipped: int = 0
    problems: list[str] = field(default_factory=list)  # the first few reasons rows were skipped


def _cell(value: object) -> str:
    return str(value).replace("\x00", "").strip() if isinstance(value, str) else ""


def read_dataset(path: str) -> Dataset:
    """Read `path`; rows without text or labels are skipped and counted, never fatal."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    try:
        handle = open(path, encoding="utf-8-sig", errors="replace", newline="")
    except OSError as error:
        raise DatasetError(f"{path}: cannot open ({error.strerror})") from None
    with handle:
        try:
            reader = csv.DictReader(handle)
            header = [h.strip().lower() for h in reader.fieldnames or []]
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise DatasetError(
                    f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(header) or 'none'}"
                )
            reader.fieldnames = header
            dataset = Dataset(rows=[])
            for line, raw in enumerate(reader, start=2):
                row = {k: _cell(v) for k, v in raw.items() if k is not None}
                reason = _problem(row)
                if reason:
                    dataset.skipped += 1
                    if len(dataset.problems) < 5:
                        dataset.problems.append(f"line {line}: {reason}")
                    continue
                tags = [t.strip() for t in row.get("tags", "").split("|") if t.strip()]
                dataset.rows.append(
                    LabelledTicket(
                        row["subject"],
                        row["body"],
                        row["queue"],
                        row["priority"].lower(),
                        tags,
                        row.get("language", ""),
                    )
                )
        except csv.Error as error:
            raise DatasetError(f"{path}: not a readable CSV ({error})") from None
    return dataset


def _problem(row: dict[str, str]) -> str:
    if not row.get("subject") and not row.get("body"):
        return "no subject and no body"
    if not row.get("queue"):
        return "no queue"
    if not row.get("priority"):
        return "no priority"
    if len(row.get("queue", "")) > 64:
        return "queue longer than 64 characters"
    return ""
