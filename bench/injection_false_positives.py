"""False-positive rate of the prompt-injection detector on ordinary tickets (../shared/corpus/tickets/dev.csv).

Run: .venv/bin/python bench/injection_false_positives.py. Prints one JSON object: how many tickets were
flagged, the rate, the count per pattern label, and the flagged subjects (for a person to judge).
The labelled tickets contain no injection attempts, so every flag is a false positive.
"""

from __future__ import annotations

import collections
import csv
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEV = ROOT.parent / "shared" / "corpus" / "tickets" / "dev.csv"


def main() -> None:
    from triage.injection import injection_signals

    with DEV.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    labels: collections.Counter[str] = collections.Counter()
    flagged = []
    for row in rows:
        signals = injection_signals(f"{row['subject']}\n{row['body']}")
        if signals:
            flagged.append(row["subject"][:80])
            labels.update(signals)
    report = {
        "tickets": len(rows),
        "flagged": len(flagged),
        "false_positive_rate": round(len(flagged) / max(1, len(rows)), 5),
        "by_label": dict(labels),
        "flagged_subjects": flagged[:20],
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
