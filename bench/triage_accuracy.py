"""Offline triage accuracy on ../shared/corpus/tickets/dev.csv (fixed 80/20 split), beside two baselines.

Run: .venv/bin/python bench/triage_accuracy.py [--seed 42]. Prints one JSON object. The dataset is
CC BY-NC (evaluation only): it is read from ../shared and never copied into the repository.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import random
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEV = ROOT.parent / "shared" / "corpus" / "tickets" / "dev.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--csv", default=str(DEV))
    args = parser.parse_args()
    if not pathlib.Path(args.csv).exists():
        print(f"skipped: {args.csv} not found (the shared corpus lives beside the project)", file=sys.stderr)
        return
    from triage.dataset import read_dataset
    from triage.evaluate import evaluate

    rows = read_dataset(args.csv).rows
    random.Random(args.seed).shuffle(rows)
    cut = int(len(rows) * 0.8)
    report = evaluate(rows[:cut], rows[cut:])
    report["seed"] = args.seed
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
