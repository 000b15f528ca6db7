"""Who a ticket can be reassigned to: active staff, moderators whose skills fit the ticket first."""

from __future__ import annotations

from dataclasses import dataclass

from models import Ticket, User
from models.tickets import OPEN_STATUSES
from models.users import staff_members


@dataclass(frozen=True)
class Candidate:
    user: User
    matched: list[str]  # the ticket's required skills this person has
    fits: bool  # has every required skill (and is a moderator)
    load: int  # open tickets assigned now

    @property
    def label(self) -> str:
        skills = ", ".join(self.user.skills or []) or "no skills"
        fit = "fits" if self.fits else f"{len(self.matched)} of the skills" if self.matched else "no matching skill"
        return f"{self.user.email} · {self.user.role} · {fit} · {self.load} open · {skills}"


def reassign_candidates(ticket: Ticket) -> list[Candidate]:
    """Active moderators and admins (a short list), those whose skills cover the ticket's first, then by
    overlap, then moderators before admins, then the least loaded. One count per person on (assignee, status)."""
    required = {s.lower() for s in ticket.required_skills or []}
    ranked = []
    for user in staff_members():
        skills = {s.lower() for s in user.skills or []}
        matched = sorted(required & skills)
        fits = user.role == "moderator" and required <= skills
        load = Ticket.objects(assignee=user.id, status__in=OPEN_STATUSES).count()
        ranked.append(Candidate(user, matched, fits, load))
    return sorted(ranked, key=lambda c: (not c.fits, -len(c.matched), c.user.role != "moderator", c.load, c.user.email))
