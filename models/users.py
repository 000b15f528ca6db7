"""People: requesters (role `user`), moderators and admins."""

from __future__ import annotations

from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from mongoengine import BooleanField, DateTimeField, Document, ListField, StringField
from pymongo.errors import DuplicateKeyError

from models.base import utcnow

ROLES = ("user", "moderator", "admin")
EMAIL_KEYS = "user_emails"  # `_id` = normalised email -> {"user": the user's id}
STAFF_ROSTER = "staff_roster"  # `_id` = the id of each moderator and admin: a short list to read
STAFF_ROLES = ("moderator", "admin")
MIN_PASSWORD_LENGTH = 10
_hasher = PasswordHasher()
# Verified against when there is no user or no hash, so a login costs the same time either way.
_DUMMY_HASH = _hasher.hash("no such user: constant-time placeholder")


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

    meta = {"collection": "users", "indexes": ["role", "skills", ("role", "active"), ("role", "email")]}

    def clean(self) -> None:
        self.email = normalise_email(self.email or "")
        self.skills = normalise_skills(self.skills or [])

    def set_password(self, password: str) -> None:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise ValueError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
        self.password_hash = _hasher.hash(password)

    def check_password(self, password: str) -> bool:
        try:
            return _hasher.verify(self.password_hash or _DUMMY_HASH, password) and bool(self.password_hash)
        except (VerificationError, InvalidHashError):
            return False

    @property
    def is_staff(self) -> bool:
        return self.role in ("moderator", "admin")

    def save(self, *args: Any, **kwargs: Any) -> Any:
        result = super().save(*args, **kwargs)
        remember_email(self)
        remember_role(self)
        return result

    @classmethod
    def by_email(cls, address: str, *, scan_if_unknown: bool = False) -> User | None:
        """The user with this email, by its key in `user_emails` (an `_id` lookup; a query on `email`
        reads every user on FerretDB). `scan_if_unknown`: when the key is missing (a crash between
        saving a user and its key), look the slow way and write the key."""
        email = normalise_email(address)
        key = cls._get_db()[EMAIL_KEYS].find_one({"_id": email})
        if key is not None:
            user = cls.objects(id=key["user"]).first()
            if user is not None and user.email == email:  # a key can outlive an email change
                return user
        if not scan_if_unknown:
            return None
        user = cls.objects(email=email).first()
        if user is not None:
            remember_email(user)
        return user

    def __str__(self) -> str:
        return self.email


def remember_email(user: User) -> None:
    """Write (or overwrite) the email key of `user`."""
    User._get_db()[EMAIL_KEYS].replace_one({"_id": user.email}, {"user": user.id}, upsert=True)


def remember_role(user: User) -> None:
    """Keep `user` on the staff roster while a moderator or admin (reads of it check the user again)."""
    roster = User._get_db()[STAFF_ROSTER]
    if user.role in STAFF_ROLES:
        roster.replace_one({"_id": user.id}, {"role": user.role}, upsert=True)
    else:
        roster.delete_one({"_id": user.id})


def staff_members(roles: tuple[str, ...] = STAFF_ROLES, *, active_only: bool = True) -> list[User]:
    """Moderators and/or admins, via the roster and each user's document (a query on `role` reads
    every user, requesters included, on FerretDB)."""
    ids = [doc["_id"] for doc in User._get_db()[STAFF_ROSTER].find({}, {"_id": 1})]
    found = (User.objects(id=user_id).first() for user_id in ids)
    return [u for u in found if u is not None and u.role in roles and (u.active or not active_only)]


def remember_all_keys() -> int:
    """Write the email key and roster entry of every user that lacks them (start-up: users written by
    hand or before the keys existed); how many were missing. One read each of users, keys and roster."""
    database = User._get_db()
    keys, roster = database[EMAIL_KEYS], database[STAFF_ROSTER]
    keyed = {doc["_id"] for doc in keys.find({}, {"_id": 1})}
    listed = {doc["_id"] for doc in roster.find({}, {"_id": 1})}
    missing = 0
    for doc in User._get_collection().find({}, {"email": 1, "role": 1}):
        if doc.get("email") and doc["email"] not in keyed:
            missing += _insert_missing(keys, {"_id": doc["email"], "user": doc["_id"]})
        if doc.get("role") in STAFF_ROLES and doc["_id"] not in listed:
            missing += _insert_missing(roster, {"_id": doc["_id"], "role": doc["role"]})
    return missing


def _insert_missing(collection: Any, entry: dict) -> int:
    try:
        collection.insert_one(entry)
        return 1
    except DuplicateKeyError:  # another process's save wrote it meanwhile, which is as good
        return 0
