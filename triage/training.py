"""Training data for the offline model: taxonomy seeds plus tickets whose labels a human set."""

from __future__ import annotations

import logging

from config import Settings
from models import Category, Skill, Ticket
from triage.autoroute import held_out_threshold
from triage.local import PRIORITY_SEEDS, Example, ModelStore, OfflineModel
from triage.provider import Taxonomy
from triage.taxonomy import load_taxonomy
from triage.textprep import ticket_input

logger = logging.getLogger(__name__)
MAX_TRAINING_TICKETS = 20_000


def taxonomy_seeds(taxonomy: Taxonomy) -> tuple[list[Example], dict[str, list[str]]]:
    """One example per category, skill keyword set and priority, from what admins wrote."""
    seeds: list[Example] = []
    for category in Category.objects(active=True):
        if category.name in taxonomy.categories:
            text = " ".join([category.name, category.description, *category.keywords])
            skills = [s for s in category.default_skills if s in taxonomy.skills]
            seeds.append(Example(subject=category.name, body=text, category=category.name, skills=skills or None))
            seeds.extend(Example(subject="", body=k, category=category.name) for k in category.keywords)
    keywords: dict[str, list[str]] = {}
    for skill in Skill.objects(active=True):
        if skill.name in taxonomy.skills:
            keywords[skill.name] = [skill.name, *skill.keywords]
            seeds.append(
                Example(subject=skill.name, body=" ".join([skill.description, *skill.keywords]), skills=[skill.name])
            )
    for priority, text in PRIORITY_SEEDS.items():
        if priority in taxonomy.priorities:
            seeds.append(Example(subject="", body=text, priority=priority))
            seeds.extend(Example(subject="", body=w, priority=priority) for w in text.split()[:12])
    return seeds, keywords


def human_examples(taxonomy: Taxonomy) -> list[Example]:
    """Tickets where a human set category, priority or skills (only values still in the taxonomy)."""
    examples = []
    query = Ticket.objects(  # the first clause names the partial index's filter, so the planner may use it
        __raw__={"triage.human_fields.0": {"$exists": True}},
        triage__human_fields__in=["category", "priority", "required_skills"],
    )
    for ticket in query.order_by("-created_at").limit(MAX_TRAINING_TICKETS):
        fields = set(ticket.triage.human_fields or [])
        item = ticket_input(ticket)
        skills = [s for s in ticket.required_skills if s in taxonomy.skills] if "required_skills" in fields else None
        examples.append(
            Example(
                subject=item.subject,
                body=item.body,
                category=ticket.category if "category" in fields and ticket.category in taxonomy.categories else None,
                priority=ticket.priority if "priority" in fields else None,
                skills=skills or None,
                reference=f"#{ticket.number}",
            )
        )
    return examples


def train_from_database(
    settings: Settings, taxonomy: Taxonomy | None = None, choose_threshold: bool = False
) -> OfflineModel:
    """Fit a model on seeds and corrections and save it to MODEL_DIR; with `choose_threshold`, also choose the
    confidence above which it routes without review, on held-out folds of the corrections (three more fits)."""
    taxonomy = taxonomy or load_taxonomy()
    seeds, keywords = taxonomy_seeds(taxonomy)
    examples = human_examples(taxonomy)
    model = OfflineModel.train(taxonomy, examples, seeds, keywords)
    if choose_threshold:
        route = held_out_threshold(taxonomy, examples, seeds, keywords)
        model.auto_route = route.as_dict() if route is not None else None
    ModelStore(settings.model_dir).save(model)
    logger.info("offline triage model trained on %s corrected tickets and %s seeds", len(examples), len(seeds))
    if model.auto_route is not None:
        logger.info(
            "review threshold %s: %.0f%% of held-out tickets routed without review (accuracy %s), %.0f%% need review",
            model.auto_route["threshold"],
            100 * model.auto_route["share"],
            model.auto_route["accuracy"],
            100 * (1 - model.auto_route["share"]),
        )
    return model


def retrain(settings: Settings) -> tuple[OfflineModel, int]:
    """The scheduled retrain: the model with a data-chosen review threshold, then the similar-ticket index
    beside it (triage/similar.py); returns the model and how many tickets the index holds."""
    from triage.similar import build_similar_index

    model = train_from_database(settings, choose_threshold=True)
    return model, build_similar_index(settings.model_dir)
