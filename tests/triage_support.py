"""Builders for triage tests: tickets with a first inbound message, and staff users."""

from __future__ import annotations

import uuid

from models import Ticket, TicketMessage, User, next_ticket_number


def make_ticket(subject: str, body: str, **fields: object) -> Ticket:
    ticket = Ticket(
        number=next_ticket_number(),
        subject=subject,
        requester_email="customer@example.test",
        source_message_id=f"<{uuid.uuid4().hex}@customer.example>",
        **fields,
    ).save()
    TicketMessage(
        ticket=ticket,
        ticket_number=ticket.number,
        kind="inbound",
        message_id=ticket.source_message_id,
        from_address="customer@example.test",
        subject=subject,
        text=body,
        new_text=body,
    ).save()
    return ticket


def make_staff(email: str, role: str = "moderator", skills: list[str] | None = None, active: bool = True) -> User:
    return User(email=email, role=role, skills=skills or [], active=active).save()
