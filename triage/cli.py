"""`flask triage evaluate` and `flask triage retrain`."""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import AppGroup

from triage.dataset import DatasetError, read_dataset

triage_cli = AppGroup("triage", help="Offline triage model: evaluate on CSVs, retrain from corrections.")


@triage_cli.command("evaluate")
@click.option(
    "--train", "train_path", required=True, type=click.Path(exists=True, dir_okay=False), help="CSV to train on"
)
@click.option("--test", "test_path", required=True, type=click.Path(exists=True, dir_okay=False), help="CSV to score")
def evaluate_command(train_path: str, test_path: str) -> None:
    """Train the offline model on TRAIN, score it on TEST beside baselines; print one JSON object."""
    from triage.evaluate import evaluate

    try:
        train, test = read_dataset(train_path), read_dataset(test_path)
        for path, dataset in ((train_path, train), (test_path, test)):
            if dataset.skipped:
                click.echo(f"{path}: skipped {dataset.skipped} unusable rows ({'; '.join(dataset.problems)})", err=True)
        report = evaluate(train.rows, test.rows)
    except DatasetError as error:
        raise click.ClickException(str(error)) from None
    report["skipped_rows"] = {"train": train.skipped, "test": test.skipped}
    click.echo(json.dumps(report))


@triage_cli.command("retrain")
def retrain_command() -> None:
    """Retrain the offline model from taxonomy seeds and moderators' corrections now; rebuild the similar-ticket
    index and choose the review threshold from held-out corrections."""
    from triage.training import human_examples, retrain

    settings = current_app.extensions["settings"]
    model, indexed = retrain(settings)
    click.echo(f"retrained on {len(human_examples(model.taxonomy))} corrected tickets; saved to {settings.model_dir}")
    click.echo(f"similar-ticket index: {indexed} resolved tickets")
    route = model.auto_route
    if route is None:
        click.echo("review threshold: too few corrected tickets to choose one; TRIAGE_REVIEW_THRESHOLD applies")
    elif route["threshold"] is None:
        click.echo("review threshold: no confidence reached 90% held-out accuracy; every ticket needs review")
    else:
        click.echo(
            f"review threshold {route['threshold']}: {route['share']:.0%} routed without review "
            f"(held-out accuracy {route['accuracy']:.0%}), {1 - route['share']:.0%} need review"
        )
