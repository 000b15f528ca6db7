"""Skills and categories: closed lists that admins edit; triage may only choose from them."""

from __future__ import annotations

from mongoengine import BooleanField, Document, ListField, StringField


class Skill(Document):
    name = StringField(required=True, unique=True, max_length=64)
    description = StringField(default="")
    keywords = ListField(StringField(max_length=64))
    active = BooleanField(default=True)

    meta = {"collection": "skills"}

    def clean(self) -> None:
        self.name = (self.name or "").strip().lower()
        self.keywords = [k.strip().lower() for k in self.keywords or [] if k.strip()]

    def __str__(self) -> str:
        return self.name


class Category(Document):
    name = StringField(required=True, unique=True, max_length=64)
    description = StringField(default="")
    keywords = ListField(StringField(max_length=64))
    default_skills = ListField(StringField(max_length=64))
    active = BooleanField(default=True)

    meta = {"collection": "categories"}

    def clean(self) -> None:
        self.name = (self.name or "").strip().lower()
        self.keywords = [k.strip().lower() for k in self.keywords or [] if k.strip()]

    def __str__(self) -> str:
        return self.name
