"""Facts an agent looks up first, found in the customer's text: order and invoice numbers, error codes,
product names, attachments. Pure: text in, lists of strings out (the email is untrusted: values are capped
data, never markup)."""

from __future__ import annotations

import re

MAX_PER_KIND = 8
MAX_VALUE_CHARS = 60
_ID = r"#?\s?([A-Z]{0,6}[-/]?\d[\w/-]{2,30}\w)"  # an identifier with at least one digit, e.g. 12345, INV-2024-7
ORDER = re.compile(
    rf"\b(?:order|purchase order|PO|bestellung|bestellnummer|auftrag|auftragsnummer)\s*"
    rf"(?:number|no\.?|nr\.?|id|#|:)?\s*:?\s*{_ID}",
    re.IGNORECASE,
)
INVOICE = re.compile(
    rf"\b(?:invoice|bill|rechnung|rechnungsnummer)\s*(?:number|no\.?|nr\.?|id|#|:)?\s*:?\s*{_ID}"
    r"|\b(INV[-/]?\d[\w/-]{2,30}\w)\b",
    re.IGNORECASE,
)
ERROR_CODE = re.compile(
    r"\b(0x[0-9A-F]{4,8})\b"  # Windows HRESULTs
    r"|\b((?:HTTP|status)\s?[1-5]\d\d)\b"  # HTTP statuses
    r"|\b(ERR_[A-Z_]{3,40})\b"  # browser-style names
    r"|\b((?:ORA|SQL|PG|E|ERR|ERROR|X)-?\d{3,6})\b"  # ORA-00942, E1234
    r"|\b(?:error|fehler|fehlercode|code)\s*(?:code|nr\.?|number|#)?\s*:?\s*(\d{3,6})\b",
    re.IGNORECASE,
)
# "Windows 11", "Office 365", "macOS 14.2", "SAP S/4HANA 2021", "PostgreSQL 15": a capitalised name and a version
VERSIONED = re.compile(r"\b((?:[A-Z]|[a-z]+[A-Z])[\w+/-]*[a-zA-Z](?:\s[A-Z][\w+/-]*){0,2})\s(v?\d+(?:\.\d+){0,3})\b")
CAMEL_CASE = re.compile(r"\b([A-Z][a-z]+[A-Z][A-Za-z]+|[a-z][A-Z][a-z]+[A-Za-z]*|[A-Z]{2,}[a-z]{3,}\w*)\b")
_NOT_PRODUCTS = frozenset(
    "the a an my our your this that it is i we you he she they on in at of for to and or but version "
    "page step line room ticket order invoice rechnung bestellung bestellnummer rechnungsnummer auftrag "
    "auftragsnummer nr no number error fehler fehlercode code http status seite kapitel raum schritt "
    "monday tuesday wednesday thursday friday saturday sunday january february march april may june july "
    "august september october november december januar februar märz mai juni juli oktober dezember".split()
)


def _unique(values: list[str]) -> list[str]:
    seen: dict[str, str] = {}
    for value in values:
        value = " ".join(value.split())[:MAX_VALUE_CHARS]
        if value and value.lower() not in seen:
            seen[value.lower()] = value
    return list(seen.values())[:MAX_PER_KIND]


def _groups(pattern: re.Pattern[str], text: str) -> list[str]:
    return [next(g for g in match.groups() if g) for match in pattern.finditer(text)]


def product_names(text: str) -> list[str]:
    """Capitalised names followed by a version number, and CamelCase product names."""
    found = []
    for match in VERSIONED.finditer(text):
        words = match.group(1).split()
        while words and words[0].lower() in _NOT_PRODUCTS:
            words = words[1:]
        if words and words[-1].lower() not in _NOT_PRODUCTS:
            found.append(f"{' '.join(words)} {match.group(2)}")
    found += [m.group(1) for m in CAMEL_CASE.finditer(text) if m.group(1).lower() not in _NOT_PRODUCTS]
    return found


def extract_facts(subject: str, body: str, attachments: list[str] | tuple[str, ...] = ()) -> dict[str, list[str]]:
    """The facts found in an email, by kind; kinds with nothing found are left out."""
    text = f"{subject}\n{body}"
    invoices = _groups(INVOICE, text)
    orders = [v for v in _groups(ORDER, text) if v not in invoices]
    errors = _groups(ERROR_CODE, text)
    numbers = {v.lower() for v in [*invoices, *orders, *errors]}
    products = [p for p in product_names(text) if p.split()[-1].lower() not in numbers]
    facts = {
        "order_numbers": _unique(orders),
        "invoice_numbers": _unique(invoices),
        "error_codes": _unique(errors),
        "products": _unique(products),
        "attachments": _unique(list(attachments)),
    }
    return {kind: values for kind, values in facts.items() if values}


LABELS = {
    "order_numbers": "Order",
    "invoice_numbers": "Invoice",
    "error_codes": "Error code",
    "products": "Product",
    "attachments": "Attachment",
}


def facts_lines(facts: dict[str, list[str]]) -> list[str]:
    """One line per kind, e.g. 'Error code: 0x80070005, HTTP 503'."""
    return [f"{LABELS.get(kind, kind)}: {', '.join(values)}" for kind, values in facts.items() if values]
