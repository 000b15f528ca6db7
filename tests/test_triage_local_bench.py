"""The accuracy bench's multi-seed mean: averages every figure, keeps the report's shape."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

BENCH = pathlib.Path(__file__).resolve().parent.parent / "bench" / "triage_accuracy.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("triage_accuracy_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("reports", "expected"),
    [
        (
            [
                {"seed": 1, "offline": {"category": {"accuracy": 0.4}, "calibration": {"top": None}}},
                {"seed": 2, "offline": {"category": {"accuracy": 0.5}, "calibration": {"top": 0.6}}},
            ],
            {"offline": {"category": {"accuracy": 0.45}, "calibration": {"top": None}}},
        ),
        ([{"seed": 7, "train_rows": 10, "test_rows": 3}], {"train_rows": 10.0, "test_rows": 3.0}),
    ],
)
def test_mean_report_averages_numbers_and_drops_the_seed(bench, reports, expected):
    assert bench.mean_report(reports) == expected


def test_split_report_is_the_seeded_80_20_split(bench, monkeypatch):
    seen = {}
    monkeypatch.setattr("triage.evaluate.evaluate", lambda train, test: seen.update(train=train, test=test) or {})
    report = bench.split_report(list(range(10)), seed=42)
    assert report == {"seed": 42} and len(seen["train"]) == 8
    assert sorted(seen["train"] + seen["test"]) == list(range(10))
