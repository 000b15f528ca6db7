"""`flask triage evaluate`: one JSON object on any CSV of the right shape; clear errors otherwise."""

from __future__ import annotations

import csv
import json
import random

import pytest

from tests.conftest import SHARED
from webadmin import create_app

HEADER = ["subject", "body", "queue", "priority", "tags", "language"]
TOPICS = {
    "Billing": ("invoice charged twice refund payment card", "Billing|Payment"),
    "Network": ("vpn router wifi disconnects dns firewall", "Network|VPN"),
    "Accounts": ("password login locked account reset access", "Account|Login"),
}


def _write(path, rows) -> str:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return str(path)


def _synthetic(count: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        queue = rng.choice(sorted(TOPICS))
        words, tags = TOPICS[queue]
        priority = "high" if i % 3 == 0 else "low"
        text = " ".join(rng.sample(words.split(), 4)) + (" urgent now asap" if priority == "high" else " whenever")
        rows.append([f"{queue} issue", text, queue, priority, tags if i % 5 else "", "en"])
    return rows


def _invoke(settings, *args: str):
    return create_app(settings).test_cli_runner().invoke(args=["triage", "evaluate", *args])


def test_evaluate_prints_one_json_object_with_baselines(settings, tmp_path):
    train = _write(tmp_path / "train.csv", _synthetic(120, 1) + [["", "", "Billing", "low", "", "en"]])
    test = _write(tmp_path / "test.csv", _synthetic(40, 2))
    result = _invoke(settings, "--train", train, "--test", test)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["train_rows"] == 120 and report["skipped_rows"] == {"train": 1, "test": 0}
    assert "skipped 1 unusable rows" in result.stderr
    for name in ("offline", "majority", "tfidf_logreg"):
        scores = report[name]
        assert set(scores["category"]) == {"accuracy", "macro_f1"} and "f1_micro" in scores["skills"]
    assert report["offline"]["category"]["accuracy"] > 0.9 > report["majority"]["category"]["accuracy"]
    assert report["offline"]["priority"]["accuracy"] > 0.9
    route = report["offline"]["auto_route"]  # chosen on held-out folds of the training file, applied to the test
    assert set(route) == {"threshold", "share", "accuracy"} and route["threshold"] is not None
    assert route["share"] > 0.5 and route["accuracy"] >= 0.9


def test_auto_route_threshold_never_sees_the_test_file(settings, tmp_path):
    train = _write(tmp_path / "train.csv", _synthetic(120, 1))
    clean, flipped = _synthetic(60, 2), _synthetic(60, 2)
    for row in flipped:  # same texts, every category wrong: the threshold must not move
        row[2] = {"Billing": "Network", "Network": "Accounts", "Accounts": "Billing"}[row[2]]
    reports = []
    for name, rows in (("clean", clean), ("flipped", flipped)):
        result = _invoke(settings, "--train", train, "--test", _write(tmp_path / f"{name}.csv", rows))
        assert result.exit_code == 0, result.output
        reports.append(json.loads(result.stdout)["offline"]["auto_route"])
    assert reports[0]["threshold"] == reports[1]["threshold"] and reports[0]["share"] == reports[1]["share"]
    assert reports[0]["accuracy"] >= 0.9 and reports[1]["accuracy"] == 0.0


def test_missing_column_is_a_clear_error(settings, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("title,text\nhello,world\n", encoding="utf-8")
    good = _write(tmp_path / "good.csv", _synthetic(20, 3))
    result = _invoke(settings, "--train", str(bad), "--test", good)
    assert result.exit_code == 1 and "missing column(s) subject, body, queue, priority" in result.stderr
    assert result.stdout == ""


def test_garbled_rows_are_skipped_not_fatal(settings, tmp_path):
    train = tmp_path / "train.csv"
    rows = _synthetic(60, 4)
    text = ",".join(HEADER) + "\n" + "\n".join(",".join(r) for r in rows) + '\n"unterminated,\x00,,\nonly-one-field\n'
    train.write_text(text, encoding="utf-8")
    test = _write(tmp_path / "test.csv", _synthetic(20, 5))
    result = _invoke(settings, "--train", str(train), "--test", test)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["train_rows"] == 60 and report["skipped_rows"]["train"] >= 1


def test_empty_test_file_is_a_clear_error(settings, tmp_path):
    train = _write(tmp_path / "train.csv", _synthetic(20, 6))
    empty = _write(tmp_path / "empty.csv", [])
    result = _invoke(settings, "--train", train, "--test", empty)
    assert result.exit_code == 1 and "the test file has no usable rows" in result.stderr


@pytest.mark.slow
def test_offline_model_beats_the_baselines_on_the_shared_tickets(tmp_path):
    dev = SHARED / "corpus" / "tickets" / "dev.csv"
    if not dev.exists():
        pytest.skip(f"{dev} not found (CC BY-NC evaluation data lives beside the project, never in it)")
    from triage.dataset import read_dataset
    from triage.evaluate import evaluate

    rows = read_dataset(str(dev)).rows
    random.Random(42).shuffle(rows)
    report = evaluate(rows[:2282], rows[2282:])
    offline, majority = report["offline"], report["majority"]
    assert offline["category"]["accuracy"] > majority["category"]["accuracy"] + 0.08
    calibration = offline["calibration"]["category"]
    assert calibration["top_half_accuracy"] > calibration["bottom_half_accuracy"] + 0.1
