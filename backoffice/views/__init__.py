"""The back office: Flask-Admin, built per app so test apps never share views.

The menu each role sees is docs/architecture.md §1: Flask-Admin leaves out every view whose
`is_accessible` is false, and the same check refuses the view's URLs.
"""

from __future__ import annotations

from flask import Flask
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme
from flask_babel import lazy_gettext as _l

from ..extensions import db
from ..models import (
    Announcement,
    BusinessHours,
    CannedReply,
    CompanyDay,
    Department,
    FaqCategory,
    FaqEntry,
    Product,
    RoutingRule,
    User,
    WhatsAppTemplate,
)
from ..web import csp_nonce
from . import desk_context, formatting
from .admin_people import PEOPLE, DepartmentView, RoutingRuleView, StaffUserView
from .agent_report import AgentReportView
from .announcements import AnnouncementSendView
from .calendar import BusinessHoursView, CompanyDayView
from .canned import CannedReplyView
from .content import CONTENT, AnnouncementView, FaqCategoryView, FaqEntryView, ProductView
from .customers import CustomerView
from .dashboard import HomeView
from .desk import TicketDeskView
from .mail_review import MailReviewView
from .menu import cached_menu
from .notices import NoticesView, menu_notice_count
from .orders import OrderView
from .reports import ReportView
from .tickets import LISTS, TicketListView
from .urls import AdminStatic, admin_assets, static_url_for
from .whatsapp_templates import WhatsAppTemplateView

TICKETS = _l("Tickets")


def init_admin(app: Flask) -> Admin:
    translations = str(app.config.get("BABEL_TRANSLATION_DIRECTORIES", "")).split(";")[0]
    admin = Admin(
        app,
        name="carebox",
        url="/admin",
        index_view=HomeView(url="/admin", name=_l("Home")),
        theme=Bootstrap4Theme(
            swatch=app.config["FLASK_ADMIN_SWATCH"], fluid=app.config["FLASK_ADMIN_FLUID_LAYOUT"]
        ),
        csp_nonce_generator=csp_nonce,
        # Flask-Admin's own words come from an `admin` catalogue in this folder
        # (backoffice/translations/id/LC_MESSAGES/admin.mo) when one exists.
        translations_path=translations or None,
    )
    for status, name, endpoint, url in LISTS:
        admin.add_view(
            TicketListView(status, name=name, endpoint=endpoint, url=url, category=TICKETS)
        )
    admin.add_views(
        TicketDeskView(name=_l("Ticket"), endpoint="ticket_desk", url="/admin/tickets/desk"),
        ReportView(name=_l("Reports"), endpoint="reports", url="/admin/reports"),
        AgentReportView(
            name=_l("Per-agent report"), endpoint="agent_report", url="/admin/agent-report"
        ),
        StaffUserView(User, db, name=_l("Staff users"), endpoint="staff", category=PEOPLE),
        DepartmentView(
            Department, db, name=_l("Departments"), endpoint="departments", category=PEOPLE
        ),
        RoutingRuleView(
            RoutingRule, db, name=_l("Routing rules"), endpoint="routing_rules", category=PEOPLE
        ),
        BusinessHoursView(
            BusinessHours,
            db,
            name=_l("Business hours"),
            endpoint="business_hours",
            url="/admin/business-hours",
            category=PEOPLE,
        ),
        CompanyDayView(
            CompanyDay,
            db,
            name=_l("Company days"),
            endpoint="company_days",
            url="/admin/company-days",
            category=PEOPLE,
        ),
        FaqCategoryView(
            FaqCategory, db, name=_l("FAQ categories"), endpoint="faq_categories", category=CONTENT
        ),
        FaqEntryView(FaqEntry, db, name=_l("FAQ entries"), endpoint="faq", category=CONTENT),
        ProductView(
            Product, db, name=_l("Products and services"), endpoint="products", category=CONTENT
        ),
        AnnouncementView(
            Announcement, db, name=_l("Announcements"), endpoint="announcements", category=CONTENT
        ),
        AnnouncementSendView(
            name=_l("Send log"),
            endpoint="announcement_log",
            url="/admin/announcements/log",
            category=CONTENT,
        ),
        WhatsAppTemplateView(
            WhatsAppTemplate,
            db,
            name=_l("WhatsApp templates"),
            endpoint="whatsapp_templates",
            url="/admin/whatsapp-templates",
            category=CONTENT,
        ),
        CustomerView(User, db, name=_l("Customers"), endpoint="customers"),
        OrderView(name=_l("Orders"), endpoint="orders"),
        CannedReplyView(
            CannedReply,
            db,
            name=_l("Canned replies"),
            endpoint="canned_replies",
            url="/admin/canned-replies",
        ),
        MailReviewView(name=_l("Held email"), endpoint="mail_review", url="/admin/mail-review"),
        NoticesView(name=_l("Notifications"), endpoint="notices", url="/admin/notifications"),
    )
    app.jinja_env.globals["menu_notice_count"] = menu_notice_count
    app.jinja_env.globals["cached_menu"] = cached_menu
    app.jinja_env.globals["url_for"] = static_url_for
    app.jinja_env.globals["admin_assets"] = admin_assets
    app.jinja_env.globals["admin_static"] = AdminStatic
    app.jinja_env.globals["desk_channel_badge"] = desk_context.channel_badge
    formatting.register(app)
    return admin
