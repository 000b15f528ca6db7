"""Marshmallow schemas of the JSON API: what comes in is validated (422 with messages), what goes
out is documented in the OpenAPI document."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates

from models import PRIORITIES, ROLES, STATUSES
from webadmin.tickets import COUNT_CAP

_SKILL = fields.String(validate=validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9 _+.#-]{0,63}$"))


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("Must not be blank.")
    if "\x00" in value:
        raise ValidationError("Must not contain NUL characters.")


class StrictSchema(Schema):
    class Meta:
        unknown = EXCLUDE


class LoginSchema(StrictSchema):
    email = fields.String(required=True, validate=validate.Length(min=3, max=320))
    password = fields.String(required=True, validate=validate.Length(min=1, max=1024))


class TokensSchema(Schema):
    access_token = fields.String()
    refresh_token = fields.String()
    token_type = fields.String()


class AccessTokenSchema(Schema):
    access_token = fields.String()
    token_type = fields.String()


class LogoutSchema(StrictSchema):
    refresh_token = fields.String(validate=validate.Length(max=4096))


class MessageSchema(Schema):
    message = fields.String()


class UserSchema(Schema):
    id = fields.String()
    email = fields.String()
    name = fields.String()
    role = fields.String()
    skills = fields.List(fields.String())
    active = fields.Boolean()


class UserQuerySchema(StrictSchema):
    role = fields.String(validate=validate.OneOf(ROLES))


class SkillsSchema(StrictSchema):
    skills = fields.List(_SKILL, required=True, validate=validate.Length(max=50))


class UserPatchSchema(StrictSchema):
    name = fields.String(validate=validate.Length(max=200))
    role = fields.String(validate=validate.OneOf(ROLES))
    skills = fields.List(_SKILL, validate=validate.Length(max=50))
    active = fields.Boolean()
    reason = fields.String(validate=validate.Length(max=2000), load_default="")


class TicketQuerySchema(StrictSchema):
    status = fields.String(validate=validate.OneOf((*STATUSES, "active")))
    priority = fields.String(validate=validate.OneOf(PRIORITIES))
    category = fields.String(validate=validate.Length(max=64))
    q = fields.String(validate=validate.Length(max=200))
    scope = fields.String(validate=validate.OneOf(("mine", "unassigned")))
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))
    per_page = fields.Integer(load_default=25, validate=validate.Range(min=1, max=100))
    count = fields.Boolean(
        load_default=True,
        metadata={"description": f"count the matches (up to {COUNT_CAP}); false skips the count: total is null"},
    )

    @validates("q", "category")
    def _no_nul(self, value: str, **_kwargs: object) -> None:
        if "\x00" in value:
            raise ValidationError("Must not contain NUL characters.")


class TicketSummarySchema(Schema):
    number = fields.Integer()
    subject = fields.String()
    status = fields.String()
    priority = fields.String()
    category = fields.String(allow_none=True)
    requester_email = fields.String()
    mailbox = fields.String(
        allow_none=True, metadata={"description": "the support address it came in on; null: the main mailbox"}
    )
    assignee = fields.String(allow_none=True)
    escalated = fields.Boolean()
    sla_breached = fields.Boolean()
    sla_due_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class TicketPageSchema(Schema):
    items = fields.List(fields.Nested(TicketSummarySchema))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer(
        allow_none=True, metadata={"description": "exact when total_exact, else a lower bound; null if not counted"}
    )
    total_exact = fields.Boolean(metadata={"description": "false when there may be more than `total` tickets"})
    has_next = fields.Boolean(metadata={"description": "another page follows"})


class AttachmentSchema(Schema):
    filename = fields.String()
    content_type = fields.String()
    size = fields.Integer()
    url = fields.String(allow_none=True)


class ThreadMessageSchema(Schema):
    id = fields.String()
    kind = fields.String()
    public = fields.Boolean()
    author = fields.String(allow_none=True)
    from_address = fields.String()
    subject = fields.String()
    text = fields.String()
    html = fields.String()
    created_at = fields.DateTime()
    attachments = fields.List(fields.Nested(AttachmentSchema))


class SimilarTicketSchema(Schema):
    number = fields.Integer()
    similarity = fields.Float(metadata={"description": "cosine similarity of the texts, 0..1"})
    subject = fields.String()
    status = fields.String()
    category = fields.String()
    reply = fields.String(metadata={"description": "the start of the first staff reply on that ticket"})


class TicketDetailSchema(TicketSummarySchema):
    required_skills = fields.List(fields.String())
    language = fields.String(allow_none=True)
    summary = fields.String(allow_none=True)
    helpful_notes = fields.String(allow_none=True)
    facts = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "triage notes: what the email mentions, by kind (order_numbers, error_codes, ...)"},
    )
    similar_tickets = fields.List(
        fields.Nested(SimilarTicketSchema), metadata={"description": "triage notes: the most similar earlier tickets"}
    )
    confidence = fields.Dict(keys=fields.String(), values=fields.Float(), allow_none=True)
    routing_reason = fields.String(allow_none=True)
    escalation_reason = fields.String(allow_none=True)
    triage_state = fields.String(allow_none=True)
    messages = fields.List(fields.Nested(ThreadMessageSchema))


class TextSchema(StrictSchema):
    text = fields.String(required=True, validate=[validate.Length(min=1, max=50_000), _not_blank])


class StatusSchema(StrictSchema):
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))


class EscalateSchema(StrictSchema):
    reason = fields.String(required=True, validate=[validate.Length(min=1, max=2000), _not_blank])


class AssignSchema(StrictSchema):
    assignee_email = fields.String(required=True, allow_none=True, validate=validate.Length(min=3, max=320))
    reason = fields.String(validate=validate.Length(max=2000), load_default="")
