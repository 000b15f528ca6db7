"""Access control shared by every admin view: admins only; anonymous -> login, others -> 403."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import abort, current_app, g
from flask_admin import AdminIndexView, expose
from flask_admin.contrib.mongoengine import ModelView
from flask_admin.contrib.mongoengine.typefmt import DEFAULT_FORMATTERS
from flask_jwt_extended import current_user, verify_jwt_in_request
from wtforms import SelectMultipleField
from wtforms.validators import ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from config import Settings
from webadmin.tickets import with_assignees
from webadmin.windows import newest_first


def human_time(view: Any, value: dt.datetime, name: str) -> str:
    """A stored UTC moment as people read it: minutes, no seconds or microseconds."""
    return value.strftime("%Y-%m-%d %H:%M")


FORMATTERS = {**DEFAULT_FORMATTERS, dt.datetime: human_time}


def admin_is_signed_in() -> bool:
    # Raises for a missing/invalid token or a cookie POST without its CSRF token; the JWT error
    # handlers turn that into a redirect to the login page (or a 403 for CSRF).
    # Asked once per menu entry while a page renders: check the token (a revocation and a user lookup) once.
    if "admin_signed_in" not in g:
        verify_jwt_in_request()
        g.admin_signed_in = current_user.role == "admin"
    return bool(g.admin_signed_in)


class AdminOnlyMixin:
    def is_accessible(self) -> bool:
        return admin_is_signed_in()

    def inaccessible_callback(self, name: str, **kwargs: Any) -> None:
        abort(403)


class ClosedIndexView(AdminOnlyMixin, AdminIndexView):
    @expose("/")
    def index(self) -> str:
        return self.render("admin/helpdesk_index.html")


MAX_LIST_PAGE = 1_000_000


class SecureModelView(AdminOnlyMixin, ModelView):
    page_size = 50
    can_set_page_size = True
    can_delete = False
    column_type_formatters = FORMATTERS
    column_type_formatters_detail = FORMATTERS
    search_hint = "Search"  # the search box's placeholder (Flask-Admin's mongoengine view shows "None")

    def search_placeholder(self) -> str:
        return self.search_hint

    @property
    def settings(self) -> Settings:
        return current_app.extensions["settings"]

    def get_list(self, page: int | None, *args: Any, **kwargs: Any) -> Any:
        # A crafted ?page=10**20 would overflow the database's 64-bit skip: clamp it to a page that can exist.
        return super().get_list(min(page or 0, MAX_LIST_PAGE), *args, **kwargs)


class CheckboxList(ListWidget):
    """A list of checkboxes with its own class (Flask-Admin would give it `form-control`, a text box's look)."""

    def __call__(self, field: Any, **kwargs: Any) -> Any:
        kwargs["class"] = "skill-checks"
        return super().__call__(field, **kwargs)


class SkillCheckboxes(SelectMultipleField):
    """Skills as a row of checkboxes, as on the panel's "My skills" page; choices are set per form."""

    widget = CheckboxList(html_tag="ul", prefix_label=False)
    option_widget = CheckboxInput()

    def __init__(self, label: str, **kwargs: Any) -> None:
        super().__init__(label, choices=[], validate_choice=False, **kwargs)


def skill_choices(*extra: list[str]) -> list[tuple[str, str]]:
    """Every defined skill, plus any the record already has (so saving never drops one silently)."""
    from models import Skill

    names = set(Skill.objects.distinct("name"))
    for values in extra:
        names.update(values)
    return [(name, name) for name in sorted(names)]


def require_reason(reason: str | None, what: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise ValidationError(f"Please give a reason for the {what}.")
    return text


class NewestFirstWindowMixin:
    """A list whose default order is `window_field` descending reads its page from a window of that field's
    index (webadmin/windows.py): the embedded server would sort every row. Other orders and searches as usual."""

    window_field = "number"
    window_related = False  # load each page's references in one query per reference field
    window_assignees = False  # load only the page's assignees, in one `$in` (instead of window_related)
    list_only_columns = False  # load only the listed columns' fields (and `list_extra_fields`) for a page
    list_extra_fields: tuple[str, ...] = ()  # fields the column formatters read beyond the columns

    def window_bounds(self, skip: int, limit: int) -> tuple[Any, Any, Any]:
        """(newest value, first window width, oldest value) of `window_field`."""
        raise NotImplementedError

    def get_list(  # noqa: PLR0913 - Flask-Admin's signature
        self,
        page: int | None,
        sort_column: str | None,
        sort_desc: bool,
        search: str | None,
        filters: Any,
        execute: bool = True,
        page_size: int | None = None,
    ) -> Any:
        count, query = super().get_list(  # type: ignore[misc]
            page, sort_column, sort_desc, search, filters, execute=False, page_size=page_size
        )
        if not execute:
            return count, query
        if self.list_only_columns and not search:  # a search's projection is applied to every match before the
            # sort on DocumentDB (14 of 36 ms for a word in 7,500 tickets): searches read whole documents
            known = self.model._fields  # type: ignore[attr-defined]
            columns = [c for c in self.column_list if c in known]  # type: ignore[attr-defined]
            query = query.only(*columns, *self.list_extra_fields)
        if search or query._ordering != [(self.window_field, -1)] or not query._limit:
            page_rows = query.select_related(1) if self.window_related else list(query)
        else:
            skip, limit = query._skip or 0, query._limit
            newest, width, oldest = self.window_bounds(skip, limit)
            page_rows = newest_first(
                query.clone(), self.window_field, newest, skip, limit, width, oldest=oldest, related=self.window_related
            )
        return count, (with_assignees(page_rows) if self.window_assignees else page_rows)
