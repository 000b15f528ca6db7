"""Low-level MIME helpers for parse.py: tolerant charset decoding, header decoding, message-id tokens.

Pure functions; none of them raise on broken input.
"""

from __future__ import annotations

import codecs
import datetime as dt
import email.header
import email.utils
import re
from email.message import Message

# Charset labels seen in real mail that Python's codec registry does not know.
_CHARSET_ALIASES = {
    "uft-8": "utf-8",
    "utf8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
    "us-askey": "ascii",
    "x-unknown": "utf-8",
    "fakescii": "ascii",
    "ks_c_5601-1987": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "iso-8859-8-i": "iso-8859-8",
    "x-user-defined": "windows-1252",
}
_MSGID_TOKEN = re.compile(r"<([^<>\s]+)>")


def clean_text(value: str) -> str:
    """Strip NUL characters (the database rejects them) and lone surrogates."""
    return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def normalise_charset(label: str | None) -> str:
    """A Python codec name for a MIME charset label; utf-8 when unknown."""
    name = (label or "").strip().strip("\"'").lower()
    if name.startswith("charset="):
        name = name[len("charset=") :].strip("\"'")
    name = _CHARSET_ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name if name else "utf-8"
    except LookupError:
        return "utf-8"


def decode_bytes(payload: bytes, charset: str | None) -> str:
    """Decode with the declared charset; fall back to utf-8, then windows-1252; never raise."""
    for candidate in (normalise_charset(charset), "utf-8"):
        try:
            return clean_text(payload.decode(candidate))
        except (UnicodeDecodeError, LookupError):
            continue
    return clean_text(payload.decode("windows-1252", errors="replace"))


def header_text(message: Message, name: str) -> str:
    """A header decoded to text (RFC 2047 encoded words, raw 8-bit bytes), '' when absent."""
    value = raw_value(message, name)
    return decode_header_value(value) if value is not None else ""


def raw_value(message: Message, name: str) -> str | None:
    """The first `name` header as received (8-bit bytes as surrogates), None when absent.

    compat32's `get()` turns 8-bit values into a Header whose str() loses those bytes.
    """
    wanted = name.lower()
    return next((str(v) for k, v in message.raw_items() if k.lower() == wanted), None)


def decode_header_value(value: object) -> str:
    if isinstance(value, email.header.Header):
        try:
            return clean_text(str(value))
        except (UnicodeError, LookupError):
            value = value.encode()
    text = str(value)
    if any("\udc80" <= ch <= "\udcff" for ch in text):
        # raw 8-bit header bytes come back as surrogates under compat32: re-decode them
        text = decode_bytes(text.encode("ascii", "surrogateescape"), "utf-8")
    try:
        parts = email.header.decode_header(text)
    except (ValueError, LookupError, AssertionError):
        return clean_text(" ".join(text.split()))
    pieces = []
    for chunk, charset in parts:
        pieces.append(decode_bytes(chunk, charset) if isinstance(chunk, bytes) else chunk)
    joined = "".join(pieces) if any(isinstance(c, bytes) for c, _ in parts) else " ".join(pieces)
    return clean_text(" ".join(joined.split()))


def message_id_tokens(value: str) -> list[str]:
    """Every `<id>` in a header value, normalised as `<id>`; a bare id is wrapped."""
    tokens = [f"<{token}>" for token in _MSGID_TOKEN.findall(value or "")]
    if not tokens and value and value.strip() and " " not in value.strip() and "@" in value:
        tokens = [f"<{value.strip().strip('<>')}>"]
    return [clean_text(token)[:998] for token in tokens]


def parse_addresses(values: list[str]) -> list[tuple[str, str]]:
    """(name, lower-cased address) pairs; entries without an `@` are dropped."""
    try:
        pairs = email.utils.getaddresses(values)
    except (ValueError, TypeError, IndexError):
        pairs = []
    result: list[tuple[str, str]] = []
    for name, address in pairs:
        address = clean_text(address).strip().strip("<>").lower()
        if "@" in address and " " not in address and address not in (a for _, a in result):
            result.append((clean_text(name).strip(), address[:320]))
    return result


def parse_date(value: str) -> dt.datetime | None:
    """A naive UTC datetime, or None when absent or unparseable."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)


def part_payload(part: Message) -> bytes:
    """The decoded body bytes of a leaf part (base64/qp/8bit); b'' when it cannot be decoded."""
    try:
        payload = part.get_payload(decode=True)
    except (ValueError, TypeError, AssertionError, LookupError):
        payload = None
    if isinstance(payload, bytes):
        return payload
    raw = part.get_payload()
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    return b""


def part_filename(part: Message) -> str:
    """The attachment name (RFC 2231 continuations and encodings, RFC 2047 words), '' when none."""
    try:
        name = part.get_filename() or part.get_param("name", header="content-type") or ""
    except (ValueError, TypeError, LookupError, AssertionError):
        return ""
    if isinstance(name, tuple):  # undecodable RFC 2231 value: (charset, language, text)
        name = email.utils.collapse_rfc2231_value(name)
    return decode_header_value(name).replace("/", "_").replace("\\", "_")[:255]
