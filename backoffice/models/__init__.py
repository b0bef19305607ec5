"""All models, imported here so Alembic and the app see one metadata."""

from .announcement import Announcement
from .announcement_send import AnnouncementSend
from .api_token import ApiToken
from .calendar import BusinessHours, CompanyDay, SlaWorkDue, SlaWorkInterval
from .canned import CannedReply
from .catalog import Product
from .dashboard import DashboardSnapshot
from .department import Department, RoutingRule, SetupVersion
from .desk import TicketViewer
from .enums import (
    AnnouncementKind,
    Badge,
    EventAction,
    InboundReason,
    InboundStatus,
    InboxStatus,
    MessageChannel,
    OrderStatus,
    OutboxStatus,
    Priority,
    ProductKind,
    ShipmentSituation,
    TicketKind,
    TicketStatus,
    TrackingEventKind,
    TrackingSource,
    WhatsAppDelivery,
    WhatsAppItemKind,
    WhatsAppMediaKind,
    WhatsAppSendKind,
    WhatsAppTemplateUse,
)
from .export_job import ExportJob, ExportStatus
from .faq import FaqCategory, FaqEntry, FaqVote
from .inbound_email import InboundEmail, InboundEmailChunk
from .notice import NoticeKind, StaffNotice
from .order import Order, OrderEvent
from .outbox import OutboxEmail
from .shipment import TrackingEvent
from .ticket import Ticket, TicketAttachment, TicketEvent, TicketMessage
from .user import CustomerProfile, Role, User, roles_users
from .whatsapp import OutboxWhatsApp, WhatsAppInbox, WhatsAppTemplate, WhatsAppWebhook

__all__ = [
    "DashboardSnapshot",
    "ApiToken",
    "Announcement",
    "AnnouncementSend",
    "AnnouncementKind",
    "Badge",
    "CannedReply",
    "BusinessHours",
    "CompanyDay",
    "SlaWorkDue",
    "SlaWorkInterval",
    "CustomerProfile",
    "Department",
    "SetupVersion",
    "EventAction",
    "ExportJob",
    "ExportStatus",
    "FaqCategory",
    "FaqEntry",
    "FaqVote",
    "InboundEmail",
    "InboundEmailChunk",
    "InboundReason",
    "InboundStatus",
    "MessageChannel",
    "NoticeKind",
    "StaffNotice",
    "Order",
    "OrderEvent",
    "OrderStatus",
    "OutboxEmail",
    "OutboxStatus",
    "Priority",
    "Product",
    "ProductKind",
    "Role",
    "ShipmentSituation",
    "RoutingRule",
    "Ticket",
    "TicketAttachment",
    "TicketEvent",
    "TicketKind",
    "TicketMessage",
    "TicketStatus",
    "TicketViewer",
    "TrackingEvent",
    "TrackingEventKind",
    "TrackingSource",
    "User",
    "roles_users",
    "InboxStatus",
    "OutboxWhatsApp",
    "WhatsAppDelivery",
    "WhatsAppInbox",
    "WhatsAppItemKind",
    "WhatsAppMediaKind",
    "WhatsAppSendKind",
    "WhatsAppTemplate",
    "WhatsAppTemplateUse",
    "WhatsAppWebhook",
]
