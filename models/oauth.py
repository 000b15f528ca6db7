"""The state of each mailbox's OAuth2 grant, written by the daemon and `mail authorize`, read by /healthz and
the admin panel. Never a token: the state, the provider's error and what an admin should do about it."""

from __future__ import annotations

import datetime as dt

from mongoengine import DateTimeField, Document, StringField

from models.base import utcnow

AUTHORIZE_COMMAND = "flask --app webadmin mail authorize"
GRANT_ACTIONS = {
    "ok": "",
    "missing": f"No refresh token yet: run `{AUTHORIZE_COMMAND}` (README: Connecting Gmail or Microsoft 365).",
    "expired": f"The grant expired (unused too long, or a password change): run `{AUTHORIZE_COMMAND}` again.",
    "revoked": f"The provider revoked the grant (or it expired): run `{AUTHORIZE_COMMAND}` again.",
    "rejected": "The mail server refused a freshly refreshed token: check OAUTH_SCOPE and that IMAP/SMTP AUTH "
    "is enabled for this mailbox at the provider.",
    "error": "The provider refused our client: check OAUTH_CLIENT_ID and OAUTH_CLIENT_SECRET (a client secret "
    "expires; create a new one in the app registration).",
}
GRANT_STATES = tuple(GRANT_ACTIONS)


class MailGrant(Document):
    """One mailbox's grant (`_id` is the address it logs in as)."""

    account = StringField(primary_key=True)
    state = StringField(choices=GRANT_STATES, required=True)
    error = StringField(default="")  # the provider's error code and description, or the server's refusal
    action = StringField(default="")
    refreshed_at = DateTimeField()  # the last successful refresh
    expires_at = DateTimeField()  # of the access token it gave
    updated_at = DateTimeField(default=utcnow)

    meta = {"collection": "mail_grants"}


def record_grant(account: str, state: str, error: str = "", expires_at: dt.datetime | None = None) -> None:
    """Upsert the grant's state; a successful refresh ("ok") also stamps refreshed_at and the token's expiry."""
    now = utcnow()
    fields: dict[str, object] = {"state": state, "error": error[:500], "action": GRANT_ACTIONS[state]}
    fields["updated_at"] = now
    if state == "ok":
        fields["refreshed_at"] = now
        if expires_at is not None:
            fields["expires_at"] = expires_at
    MailGrant._get_collection().update_one({"_id": account}, {"$set": fields}, upsert=True)


def grant_states() -> list[dict[str, object]]:
    """Every grant as /healthz shows it (one per OAuth2 mailbox: a handful of rows)."""
    return [
        {"account": g.account, "state": g.state, "error": g.error or None, "action": g.action or None}
        for g in MailGrant.objects.order_by("account")
    ]
