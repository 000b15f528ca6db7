"""The closed lists triage chooses from, and defaults for a fresh install."""

from __future__ import annotations

import logging

from mongoengine import NotUniqueError

from models import Category, Skill
from models.tickets import PRIORITIES
from triage.provider import Taxonomy

logger = logging.getLogger(__name__)

# name -> (description, keywords in English and German, default skills)
DEFAULT_CATEGORIES: dict[str, tuple[str, list[str], list[str]]] = {
    "billing": (
        "Invoices, charges, payments, refunds, subscriptions and pricing questions.",
        [
            "invoice",
            "charge",
            "charged",
            "payment",
            "refund",
            "billing",
            "subscription",
            "price",
            "rechnung",
            "zahlung",
            "abbuchung",
            "erstattung",
            "gebühr",
            "abo",
        ],
        ["payments"],
    ),
    "technical": (
        "Something does not work: errors, crashes, outages, performance, integrations and bugs.",
        [
            "error",
            "crash",
            "bug",
            "outage",
            "down",
            "slow",
            "not working",
            "server",
            "fehler",
            "absturz",
            "ausfall",
            "funktioniert nicht",
            "langsam",
            "störung",
        ],
        ["troubleshooting"],
    ),
    "account": (
        "Logins, passwords, access rights, profile and account settings.",
        [
            "login",
            "password",
            "account",
            "access",
            "locked",
            "sign in",
            "2fa",
            "anmeldung",
            "passwort",
            "konto",
            "zugang",
            "gesperrt",
            "zugriff",
        ],
        ["accounts"],
    ),
    "shipping": (
        "Orders, deliveries, tracking, returns and exchanges of physical goods.",
        [
            "order",
            "delivery",
            "shipping",
            "tracking",
            "return",
            "exchange",
            "package",
            "bestellung",
            "lieferung",
            "versand",
            "sendung",
            "rücksendung",
            "umtausch",
            "paket",
        ],
        ["logistics"],
    ),
    "general": (
        "Questions, feedback, sales enquiries and anything else.",
        [
            "question",
            "information",
            "feedback",
            "demo",
            "quote",
            "partnership",
            "frage",
            "information",
            "angebot",
            "rückmeldung",
            "anfrage",
        ],
        [],
    ),
}

DEFAULT_SKILLS: dict[str, tuple[str, list[str]]] = {
    "payments": (
        "Payment processing, cards, invoices and billing systems.",
        ["payment", "card", "invoice", "billing", "charge", "zahlung", "karte", "rechnung"],
    ),
    "refunds": ("Refunds, credits and chargebacks.", ["refund", "chargeback", "credit", "erstattung", "gutschrift"]),
    "accounts": (
        "Account access, passwords, two-factor and permissions.",
        ["login", "password", "2fa", "locked", "permission", "passwort", "anmeldung", "konto"],
    ),
    "sso": ("Single sign-on, SAML, OAuth and identity providers.", ["sso", "saml", "oauth", "okta", "azure ad"]),
    "networking": (
        "Networks, VPN, DNS, firewalls and connectivity.",
        ["network", "vpn", "dns", "firewall", "wifi", "router", "netzwerk", "verbindung"],
    ),
    "email": (
        "Email delivery, mailboxes, Outlook and spam.",
        ["email", "outlook", "mailbox", "smtp", "spam", "e-mail"],
    ),
    "security": (
        "Security incidents, malware, breaches and data protection.",
        ["security", "breach", "virus", "malware", "phishing", "sicherheit", "datenschutz"],
    ),
    "database": (
        "Databases, data loss, backups and queries.",
        ["database", "postgres", "mysql", "sql", "backup", "datenbank", "daten"],
    ),
    "hardware": (
        "Laptops, printers, devices and peripherals.",
        ["laptop", "printer", "device", "hardware", "monitor", "drucker", "gerät"],
    ),
    "integrations": (
        "APIs, webhooks and third-party integrations.",
        ["api", "webhook", "integration", "sdk", "token", "schnittstelle"],
    ),
    "troubleshooting": (
        "Diagnosing errors, crashes, bugs and performance problems.",
        ["error", "crash", "bug", "slow", "performance", "fehler", "absturz", "langsam"],
    ),
    "logistics": (
        "Shipping, delivery tracking, returns and exchanges.",
        ["shipping", "delivery", "tracking", "return", "lieferung", "versand", "rücksendung"],
    ),
}


def ensure_default_taxonomy() -> None:
    """Seed categories and skills when their collection is empty (idempotent, safe to race)."""
    if Category.objects.first() is None:  # not .count(): unfiltered, it is the server's estimate
        for name, (description, keywords, skills) in DEFAULT_CATEGORIES.items():
            _save_quietly(Category(name=name, description=description, keywords=keywords, default_skills=skills))
    if Skill.objects.first() is None:
        for name, (description, keywords) in DEFAULT_SKILLS.items():
            _save_quietly(Skill(name=name, description=description, keywords=keywords))


def _save_quietly(record: Category | Skill) -> None:
    try:
        record.save()
    except NotUniqueError:  # a concurrent seeder created it first
        logger.debug("taxonomy record %s already exists", record.name)


def load_taxonomy() -> Taxonomy:
    """The active categories and skills, seeding defaults on a fresh install."""
    ensure_default_taxonomy()
    categories = tuple(sorted(c.name for c in Category.objects(active=True).only("name")))
    skills = tuple(sorted(s.name for s in Skill.objects(active=True).only("name")))
    default_category = "general" if "general" in categories else (categories[0] if categories else "")
    return Taxonomy(
        categories=categories, skills=skills, priorities=tuple(PRIORITIES), default_category=default_category
    )
