"""Hostile-header hygiene for parse.py: addresses from the raw header, display text cleaned of control
and bidi characters, a stable identity for messages without a Message-ID. Pure functions.
"""

from __future__ import annotations

import datetime as dt
import email.header
import email.policy
import email.utils
import hashlib
import re
import unicodedata

from daemon.mime import clean_text, decode_header_value

# Bidi embeddings, overrides and isolates, and the implicit marks: they reorder what people read.
BIDI_CONTROLS = frozenset("\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff\u180e")
_LINK = re.compile(r"(?i)\b(?:[a-z][a-z0-9+.-]*://|www\.)\S*|\S+\.(?:[a-z]{2,24})(?:/\S*)?\b")
_HEADER_FACTORY = email.policy.default.header_factory


def clean_display(value: str, limit: int = 998) -> str:
    """Text for a header or a person to read: no CR/LF/NUL/other control, format or bidi characters,
    whitespace runs collapsed, at most `limit` characters."""
    kept = []
    for char in clean_text(value or ""):
        category = unicodedata.category(char)
        if char in BIDI_CONTROLS or char in ZERO_WIDTH:
            continue
        if category in ("Cc", "Zl", "Zp"):
            kept.append(" ")
        elif category in ("Cf", "Cs", "Co", "Cn") and char not in "\u00ad":
            continue
        else:
            kept.append(char)
    return " ".join("".join(kept).split())[:limit]


def clean_filename(value: str) -> str:
    """An attachment name safe to show and to offer for download: cleaned, no path separators."""
    return clean_display(value, 255).replace("/", "_").replace("\\", "_")


def raw_header(value: object) -> str:
    """A header value as received (encoded words still encoded); bytes beyond ASCII kept as text."""
    if isinstance(value, email.header.Header):
        return value.encode()
    text = str(value)
    if any("\udc80" <= ch <= "\udcff" for ch in text):
        text = text.encode("ascii", "surrogateescape").decode("utf-8", "replace")
    return text


def addresses_from_raw(value: str) -> list[tuple[str, str]]:
    """(display name, lower-cased address) pairs parsed from the raw header with the modern policy.

    The address comes only from the address part of the raw header; a display name is decoded after
    parsing, so an encoded word that holds `<someone@else>` or CR/LF stays part of a name.
    """
    value = value or ""
    pairs: list[tuple[str, str]] = []
    try:
        header = _HEADER_FACTORY("to", value)
        for address in header.addresses:
            pairs.append((str(address.display_name or ""), str(address.addr_spec or "")))
    except Exception:  # the modern parser on hostile input: fall back to the classic tokenizer
        try:
            parsed = email.utils.getaddresses([value])
        except (ValueError, TypeError, IndexError):
            parsed = []
        pairs = [(decode_header_value(name), address) for name, address in parsed]
    result: list[tuple[str, str]] = []
    for name, address in pairs:
        address = clean_text(address).strip().strip("<>").lower()
        if "@" not in address or any(c.isspace() or unicodedata.category(c) == "Cc" for c in address):
            continue
        if address not in (a for _, a in result):
            result.append((clean_display(name, 200), address[:320]))
    return result


def subject_excerpt(subject: str, limit: int = 60) -> str:
    """A short, link-free excerpt of a subject, safe to echo back to an unverified sender."""
    text = _LINK.sub("", clean_display(subject))
    text = re.sub(r"[<>\[\]{}|`]", "", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def stable_message_id(
    date: dt.datetime | None, from_address: str, to: list[str], subject: str, body: str, domain: str
) -> str:
    """The identity of a message without a Message-ID: what it says, not how it travelled (no Received:)."""
    parts = [
        date.isoformat() if date else "",
        from_address,
        ",".join(sorted(to)),
        " ".join(subject.split()),
        " ".join(body.split()),
    ]
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "replace")).hexdigest()[:40]
    return f"<{digest}@{domain}>"
