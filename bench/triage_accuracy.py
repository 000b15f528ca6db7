"""Offline triage accuracy on ../shared/corpus/tickets/dev.csv (fixed 80/20 split), beside two baselines.

Run: .venv/bin/python bench/triage_accuracy.py [--seed 42 | --seeds 42,1,2,3,4]. Prints one JSON object;
with --seeds, one report per seed plus their mean, so a change is not judged on one split. The dataset is
CC BY-NC (evaluation only): it is read from ../shared and never copied into the repository.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import random
import sys
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEV = ROOT.parent / "shared" / "corpus" / "tickets" / "dev.csv"


def split_report(rows: list, seed: int) -> dict:
    """Shuffle by `seed`, train on the first 80%, score on the rest (the split the README quotes)."""
    from triage.evaluate import evaluate

    rows = list(rows)
    random.Random(seed).shuffle(rows)
    cut = int(len(rows) * 0.8)
    report = evaluate(rows[:cut], rows[cut:])
    report["seed"] = seed
    return report


def mean_report(reports: list[dict]) -> dict:
    """The numeric leaves of `reports` averaged, keeping their shape (None where a seed had no value)."""

    def merge(values: list[Any]) -> Any:
        first = values[0]
        if isinstance(first, dict):
            return {key: merge([v[key] for v in values]) for key in first}
        if isinstance(first, int | float) and not isinstance(first, bool) and None not in values:
            return round(sum(values) / len(values), 4)
        return None

    return merge([{k: v for k, v in r.items() if k != "seed"} for r in reports])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--seeds", help="comma-separated seeds: per-seed reports and their mean")
    parser.add_argument("--csv", default=str(DEV))
    args = parser.parse_args()
    if not pathlib.Path(args.csv).exists():
        print(f"skipped: {args.csv} not found (the shared corpus lives beside the project)", file=sys.stderr)
        return
    from triage.dataset import read_dataset

    rows = read_dataset(args.csv).rows
    if not args.seeds:
        print(json.dumps(split_report(rows, args.seed), indent=2))
        return
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    reports = [split_report(rows, seed) for seed in seeds]
    print(json.dumps({"seeds": seeds, "mean": mean_report(reports), "per_seed": reports}, indent=2))


if __name__ == "__main__":
    main()
