"""MongoDB documents (mongoengine). The web app and the daemon meet only here."""

from models.audit import AuditEvent, RevokedToken, record_audit
from models.base import connect_db, disconnect_db, ensure_all_indexes, leave_indexes_to_start_up, utcnow
from models.mail import MailboxCursor, MailboxLease, MessageLedger, QuarantinedEmail
from models.outbox import AckRateCounter, OutboundEmail, queue_email
from models.taxonomy import Category, Skill
from models.tickets import (
    PRIORITIES,
    STATUSES,
    AttachmentRef,
    Ticket,
    TicketMessage,
    TriageState,
    next_ticket_number,
    next_ticket_numbers,
)
from models.users import ROLES, User, normalise_email

leave_indexes_to_start_up()

__all__ = [
    "AckRateCounter",
    "PRIORITIES",
    "ROLES",
    "STATUSES",
    "AttachmentRef",
    "AuditEvent",
    "Category",
    "MailboxCursor",
    "MailboxLease",
    "MessageLedger",
    "OutboundEmail",
    "QuarantinedEmail",
    "RevokedToken",
    "Skill",
    "Ticket",
    "TicketMessage",
    "TriageState",
    "User",
    "connect_db",
    "disconnect_db",
    "ensure_all_indexes",
    "next_ticket_number",
    "next_ticket_numbers",
    "normalise_email",
    "queue_email",
    "record_audit",
    "utcnow",
]
