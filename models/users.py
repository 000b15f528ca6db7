"""People: requesters (role `user`), moderators and admins."""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from mongoengine import BooleanField, DateTimeField, Document, IntField, ListField, StringField, signals

from models.base import utcnow

ROLES = ("user", "moderator", "admin")
STAFF_ROLES = ("moderator", "admin")
MIN_PASSWORD_LENGTH = 10
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when there is no user or no hash, so a login costs the same time either way. Made on
    first use, not at import: one argon2 hash takes ~0.2 s and 64 MiB, which every process (the daemon too)
    would otherwise pay at start."""
    return _hasher.hash("no such user: constant-time placeholder")


def normalise_email(address: str) -> str:
    """Emails are unique case-insensitively: store them stripped and lower-cased."""
    return address.strip().lower()


def normalise_skills(skills: list[str]) -> list[str]:
    """Lower-case, strip, drop empties and duplicates, keep order."""
    seen: dict[str, None] = {}
    for skill in skills:
        name = skill.strip().lower()
        if name:
            seen.setdefault(name, None)
    return list(seen)


class User(Document):
    email = StringField(required=True, unique=True, max_length=320)
    name = StringField(max_length=200, default="")
    role = StringField(required=True, choices=ROLES, default="user")
    skills = ListField(StringField(max_length=64))
    password_hash = StringField()
    active = BooleanField(default=True)
    created_at = DateTimeField(default=utcnow)
    last_assigned_at = DateTimeField()
    token_version = IntField(default=0)  # in every token; bumped on a password, role or activity change

    meta = {"collection": "users", "indexes": ["skills", ("role", "active"), ("role", "email")]}

    def clean(self) -> None:
        self.email = normalise_email(self.email or "")
        self.skills = normalise_skills(self.skills or [])

    def set_password(self, password: str) -> None:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise ValueError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
        self.password_hash = _hasher.hash(password)

    def check_password(self, password: str) -> bool:
        try:
            return _hasher.verify(self.password_hash or _dummy_hash(), password) and bool(self.password_hash)
        except (VerificationError, InvalidHashError):
            return False

    @property
    def is_staff(self) -> bool:
        return self.role in ("moderator", "admin")

    @classmethod
    def by_email(cls, address: str) -> User | None:
        """The user with this email (case-insensitive): the unique `email` index."""
        return cls.objects(email=normalise_email(address)).first()

    def __str__(self) -> str:
        return self.email


def staff_members(roles: tuple[str, ...] = STAFF_ROLES, *, active_only: bool = True) -> list[User]:
    """Moderators and/or admins (active ones unless told otherwise): the ("role", "active") index."""
    query = User.objects(role__in=list(roles))
    if active_only:
        query = query.filter(active=True)
    return list(query)


from models.user_sessions import bump_token_version_on_credential_change  # noqa: E402

signals.pre_save.connect(bump_token_version_on_credential_change, sender=User)
