"""Flask-Admin for admins: one `Admin` per app (tests build several apps), every view closed by default."""

from __future__ import annotations

from flask import Flask, g
from flask_admin import Admin
from flask_admin.menu import MenuLink
from flask_admin.theme import Bootstrap4Theme

from config import Settings
from models import AuditEvent, Category, OutboundEmail, QuarantinedEmail, Skill, Ticket, User
from models.api_keys import ApiKey
from models.mailboxes import SupportMailbox
from models.oauth import MailGrant


def init_admin(app: Flask, settings: Settings) -> Admin:
    from webadmin.admin_panel.api_keys import ApiKeyView
    from webadmin.admin_panel.base import ClosedIndexView
    from webadmin.admin_panel.grants import MailGrantView, SupportMailboxView
    from webadmin.admin_panel.mailops import AuditView, OutboxView, QuarantineView
    from webadmin.admin_panel.people import CategoryView, RequesterView, SkillView, UserView
    from webadmin.admin_panel.tickets import EscalationView, TicketView, TriageReviewView

    admin = Admin(
        app,
        name="Helpdesk admin",
        index_view=ClosedIndexView(url="/admin"),
        theme=Bootstrap4Theme(base_template="admin/helpdesk_base.html", fluid=True),
        csp_nonce_generator=lambda: g.get("csp_nonce", ""),
    )
    admin.add_view(UserView(User, name="Staff", endpoint="users", category="Team"))
    admin.add_view(RequesterView(User, name="Requesters", endpoint="requesters", category="Team"))
    admin.add_view(SkillView(Skill, name="Skills", endpoint="skills", category="Team"))
    admin.add_view(CategoryView(Category, name="Categories", endpoint="categories", category="Team"))
    admin.add_view(TicketView(Ticket, name="Tickets", endpoint="tickets_admin", category="Tickets"))
    admin.add_view(EscalationView(Ticket, name="Escalations", endpoint="escalations", category="Tickets"))
    admin.add_view(TriageReviewView(Ticket, name="Triage review", endpoint="triage_review", category="Tickets"))
    admin.add_view(QuarantineView(QuarantinedEmail, name="Quarantine", endpoint="quarantine", category="Mail"))
    admin.add_view(OutboxView(OutboundEmail, name="Outbox", endpoint="outbox", category="Mail"))
    admin.add_view(SupportMailboxView(SupportMailbox, name="Mailboxes", endpoint="mailboxes", category="Mail"))
    admin.add_view(MailGrantView(MailGrant, name="Mailbox sign-in", endpoint="mail_grants", category="Mail"))
    admin.add_view(AuditView(AuditEvent, name="Audit log", endpoint="audit"))
    admin.add_view(ApiKeyView(ApiKey, name="API keys", endpoint="api_keys", category="Team"))
    admin.add_link(MenuLink(name="Dashboard", url="/dashboard"))
    admin.add_link(MenuLink(name="Queue", url="/queue"))
    return admin
