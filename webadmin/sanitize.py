"""Render-time sanitising of email HTML (defence in depth: the daemon stored it cleaned already)."""

from __future__ import annotations

import nh3
from markupsafe import Markup

_TAGS = set(nh3.ALLOWED_TAGS) - {"img"}  # remote images track readers; attachments are downloadable instead
_URL_SCHEMES = {"http", "https", "mailto"}


def safe_email_html(html: str | None) -> Markup:
    """Clean untrusted HTML with nh3: no scripts, no event handlers, no styles, links open safely."""
    if not html:
        return Markup("")
    cleaned = nh3.clean(html, tags=_TAGS, url_schemes=_URL_SCHEMES, link_rel="noopener noreferrer nofollow")
    return Markup(cleaned)  # noqa: S704 - cleaned by nh3 just above
