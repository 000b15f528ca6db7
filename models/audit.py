"""Audit log (assignments, escalations, role changes) and revoked JWTs."""

from __future__ import annotations

from mongoengine import DateTimeField, Document, IntField, StringField

from models.base import utcnow


class AuditEvent(Document):
    at = DateTimeField(default=utcnow)
    actor = StringField(required=True)  # an email, or "system:<job>"
    action = StringField(required=True)  # assign, escalate, role_change, skills_change, deactivate, ...
    target = StringField(default="")  # "ticket:12", "user:a@b"
    ticket_number = IntField()
    detail = StringField(default="")
    reason = StringField(default="")

    meta = {"collection": "audit_log", "indexes": ["-at", "ticket_number", ("actor", "-at"), ("action", "-at")]}


def record_audit(
    actor: str, action: str, target: str = "", *, ticket_number: int | None = None, detail: str = "", reason: str = ""
) -> AuditEvent:
    return AuditEvent(
        actor=actor, action=action, target=target, ticket_number=ticket_number, detail=detail, reason=reason
    ).save()


class RevokedToken(Document):
    """A logged-out token; keyed by its jti so the check on every request is an `_id` lookup."""

    jti = StringField(primary_key=True)
    expires_at = DateTimeField(required=True)
    revoked_at = DateTimeField(default=utcnow)

    meta = {"collection": "revoked_tokens"}
