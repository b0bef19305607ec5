"""Every state a column can hold. Stored as their values (see `enum_column`)."""

import enum

from flask_babel import lazy_gettext as _l

from ..i18n import current_locale

# Each enum's labels, built once: they are lazy strings, translated when read.
_LABELS: dict[type, dict] = {}
# ... and read once per language: {(enum, locale identifier): {member: text}}. A label is its
# lazy string's text in the request's language (the catalogues do not change while the
# process runs); reading one through flask_babel costs ~55 Python calls, and the desk
# prints ~90 (statuses, events, scans), a list page a few per row.
_TEXTS: dict[tuple[type, str], dict] = {}


class LabelledEnum(enum.StrEnum):
    @property
    def label(self) -> str:
        labels = _LABELS.get(type(self))
        if labels is None:
            labels = _LABELS[type(self)] = self._labels()
        locale = current_locale()
        if locale is None:  # outside any app context: what the lazy string reads
            return str(labels[self])
        key = (type(self), str(locale))
        texts = _TEXTS.get(key)
        if texts is None:
            texts = _TEXTS[key] = {m: str(text) for m, text in labels.items()}
        return texts[self]

    @classmethod
    def _labels(cls) -> dict:
        raise NotImplementedError

    @classmethod
    def choices(cls) -> list[tuple[str, str]]:
        return [(m.value, m.label) for m in cls]

    def __str__(self) -> str:
        return self.value


class TicketStatus(LabelledEnum):
    PROGRESS = "progress"
    TEAM = "team"
    RESPONDED = "responded"
    FINISHED = "finished"

    @classmethod
    def _labels(cls):
        return {
            cls.PROGRESS: _l("Progress Ticket"),
            cls.TEAM: _l("Ticket in team handling"),
            cls.RESPONDED: _l("Ticket Response"),
            cls.FINISHED: _l("Ticket Finish"),
        }


OPEN_STATUSES = (TicketStatus.PROGRESS, TicketStatus.TEAM, TicketStatus.RESPONDED)


class TicketKind(LabelledEnum):
    COMPLAINT = "complaint"
    CRITICISM = "criticism"
    SUGGESTION = "suggestion"
    QUESTION = "question"

    @classmethod
    def _labels(cls):
        return {
            cls.COMPLAINT: _l("Complaint"),
            cls.CRITICISM: _l("Criticism"),
            cls.SUGGESTION: _l("Suggestion"),
            cls.QUESTION: _l("Question"),
        }


class Priority(LabelledEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"

    @classmethod
    def _labels(cls):
        return {
            cls.LOW: _l("Low"),
            cls.NORMAL: _l("Normal"),
            cls.HIGH: _l("High"),
            cls.URGENT: _l("Urgent"),
        }


class EventAction(LabelledEnum):
    FILED = "filed"
    ROUTED = "routed"
    DISPATCHED = "dispatched"
    ESCALATED = "escalated"
    REPLIED = "replied"
    CUSTOMER_REPLIED = "customer_replied"
    NOTE = "note"
    PRIORITY = "priority"
    ASSIGNED = "assigned"
    FINISHED = "finished"
    REOPENED = "reopened"
    RATED = "rated"
    DUE_MOVED = "due_moved"  # the SLA due time moved: the note says why (domain/sla.py)
    FINISH_WARNED = "finish_warned"  # the customer was told it will finish (autofinish)
    MERGED = "merged"  # a duplicate merged into another ticket (on both: the note says which)
    PARCEL_LINKED = "parcel_linked"  # staff named the ticket's parcel (the note: its resi)

    @classmethod
    def _labels(cls):
        return {
            cls.FILED: _l("Filed"),
            cls.ROUTED: _l("Routed by rule"),
            cls.DISPATCHED: _l("Dispatched"),
            cls.ESCALATED: _l("Escalated"),
            cls.REPLIED: _l("Staff replied"),
            cls.CUSTOMER_REPLIED: _l("Customer replied"),
            cls.NOTE: _l("Internal note"),
            cls.PRIORITY: _l("Priority changed"),
            cls.ASSIGNED: _l("Assigned"),
            cls.FINISHED: _l("Finished"),
            cls.REOPENED: _l("Reopened"),
            cls.RATED: _l("Rated"),
            cls.DUE_MOVED: _l("Due time moved"),
            cls.FINISH_WARNED: _l("Warned before finishing"),
            cls.MERGED: _l("Merged"),
            cls.PARCEL_LINKED: _l("Parcel linked"),
        }


class MessageChannel(LabelledEnum):
    """Where a ticket message was written: the portal (or the desk), email, WhatsApp."""

    PORTAL = "portal"
    EMAIL = "email"
    WHATSAPP = "whatsapp"

    @classmethod
    def _labels(cls):
        return {cls.PORTAL: _l("Portal"), cls.EMAIL: _l("Email"), cls.WHATSAPP: _l("WhatsApp")}


class ProductKind(LabelledEnum):
    SERVICE = "service"
    PRODUCT = "product"

    @classmethod
    def _labels(cls):
        return {cls.SERVICE: _l("Service"), cls.PRODUCT: _l("Product")}


class Badge(LabelledEnum):
    NONE = "none"
    NEW = "new"
    IMPROVED = "improved"

    @classmethod
    def _labels(cls):
        return {cls.NONE: _l("None"), cls.NEW: _l("New"), cls.IMPROVED: _l("Improved")}


class OrderStatus(LabelledEnum):
    PLACED = "placed"
    PICKED_UP = "picked_up"
    IN_TRANSIT = "in_transit"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"

    @classmethod
    def _labels(cls):
        return {
            cls.PLACED: _l("Placed"),
            cls.PICKED_UP: _l("Picked up"),
            cls.IN_TRANSIT: _l("In transit"),
            cls.DELIVERED: _l("Delivered"),
            cls.CANCELLED: _l("Cancelled"),
        }


class OutboxStatus(LabelledEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"

    @classmethod
    def _labels(cls):
        return {
            cls.PENDING: _l("Pending"),
            cls.SENDING: _l("Sending"),
            cls.SENT: _l("Sent"),
            cls.FAILED: _l("Failed"),
        }


class AnnouncementKind(LabelledEnum):
    NEW_PRODUCT = "new_product"
    IMPROVED_PRODUCT = "improved_product"
    NEWS = "news"

    @classmethod
    def _labels(cls):
        return {
            cls.NEW_PRODUCT: _l("New product"),
            cls.IMPROVED_PRODUCT: _l("Improved product"),
            cls.NEWS: _l("General news"),
        }


class InboxStatus(LabelledEnum):
    """A queued inbound item (backoffice/channels/whatsapp_in.py)."""

    PENDING = "pending"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"

    @classmethod
    def _labels(cls):
        return {
            cls.PENDING: _l("Pending"),
            cls.PROCESSING: _l("Processing"),
            cls.DONE: _l("Done"),
            cls.FAILED: _l("Failed"),
        }


class WhatsAppItemKind(LabelledEnum):
    """What one item of a webhook delivery is: a customer's message or a status update."""

    MESSAGE = "message"
    STATUS = "status"

    @classmethod
    def _labels(cls):
        return {cls.MESSAGE: _l("Message"), cls.STATUS: _l("Status")}


class WhatsAppSendKind(LabelledEnum):
    """Free text (inside the 24-hour window) or an approved template (outside it)."""

    TEXT = "text"
    TEMPLATE = "template"

    @classmethod
    def _labels(cls):
        return {cls.TEXT: _l("Text"), cls.TEMPLATE: _l("Template")}


class WhatsAppMediaKind(LabelledEnum):
    """A staff attachment sent on WhatsApp: a photo or a document (PDF)."""

    IMAGE = "image"
    DOCUMENT = "document"

    @classmethod
    def _labels(cls):
        return {cls.IMAGE: _l("Image"), cls.DOCUMENT: _l("Document")}


class WhatsAppTemplateUse(LabelledEnum):
    """What carebox sends an approved template for, besides the desk's picker."""

    DESK = "desk"  # only chosen by staff at the desk
    REPLY = "reply"  # a staff reply outside the 24-hour window: {ticket number, the reply}
    STAFF_REPLIED = "staff_replied"  # the notification "staff answered your ticket"
    TICKET_FINISHED = "ticket_finished"  # the notification "finished", with the rating link
    OUT_FOR_DELIVERY = "out_for_delivery"  # the notification "your parcel is out for delivery"
    VERIFY_PHONE = "verify_phone"  # the link that proves a phone (domain/phone_claims.py)

    @classmethod
    def _labels(cls):
        return {
            cls.DESK: _l("Chosen at the desk only"),
            cls.REPLY: _l("Staff replies outside the 24-hour window"),
            cls.STAFF_REPLIED: _l("Notification: staff replied"),
            cls.TICKET_FINISHED: _l("Notification: ticket finished (rating link)"),
            cls.OUT_FOR_DELIVERY: _l("Notification: shipment out for delivery"),
            cls.VERIFY_PHONE: _l("The link that adds a WhatsApp number to an account"),
        }


class WhatsAppDelivery(LabelledEnum):
    """What WhatsApp's status webhooks said of a message carebox sent (ticks on the desk)."""

    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"

    @classmethod
    def _labels(cls):
        return {
            cls.SENT: _l("Sent"),
            cls.DELIVERED: _l("Delivered"),
            cls.READ: _l("Read"),
            cls.FAILED: _l("Not delivered"),
        }


class TrackingEventKind(LabelledEnum):
    """What happened to a parcel (docs/architecture.md, shipments)."""

    PICKED_UP = "picked_up"
    AT_HUB = "at_hub"
    DEPARTED_HUB = "departed_hub"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    DELIVERY_FAILED = "delivery_failed"
    RETURNED = "returned"
    ON_HOLD = "on_hold"
    # Made in carebox only (domain/orders.py `cancel`), never fed by operations; the last
    # in a parcel's life, so of two events at one moment it is the latest (shipments.RANK).
    CANCELLED = "cancelled"

    @classmethod
    def _labels(cls):
        return {
            cls.PICKED_UP: _l("Picked up"),
            cls.AT_HUB: _l("Arrived at hub"),
            cls.DEPARTED_HUB: _l("Departed hub"),
            cls.OUT_FOR_DELIVERY: _l("Out for delivery"),
            cls.DELIVERED: _l("Delivered"),
            cls.DELIVERY_FAILED: _l("Delivery failed"),
            cls.RETURNED: _l("Returned to sender"),
            cls.ON_HOLD: _l("On hold"),
            cls.CANCELLED: _l("Order cancelled"),
        }


class ShipmentSituation(LabelledEnum):
    """Where a ticket's parcel stands, as the desk and routing see it (docs/architecture.md
    §7). Derived in one place: `domain/situations.py`. Listed from the most to the least
    pressing: a ticket shows the first that applies."""

    DAMAGED = "damaged"
    DELIVERED_DISPUTED = "delivered_disputed"
    FAILED_DELIVERY = "failed_delivery"
    STUCK = "stuck"
    LATE = "late"

    @classmethod
    def _labels(cls):
        return {
            cls.DAMAGED: _l("Damaged"),
            cls.DELIVERED_DISPUTED: _l("Delivered, disputed"),
            cls.FAILED_DELIVERY: _l("Delivery failed"),
            cls.STUCK: _l("Stuck"),
            cls.LATE: _l("Late"),
        }


class TrackingSource(LabelledEnum):
    """Where a tracking event came in."""

    IMPORT = "import"
    API = "api"
    STAFF = "staff"
    MIGRATION = "migration"
    SEED = "seed"
    CUSTOMER = "customer"  # the customer on the portal (cancelling their placed order)

    @classmethod
    def _labels(cls):
        return {
            cls.IMPORT: _l("File import"),
            cls.API: _l("API"),
            cls.STAFF: _l("Staff"),
            cls.MIGRATION: _l("Earlier status change"),
            cls.SEED: _l("Demo data"),
            cls.CUSTOMER: _l("Customer"),
        }


class InboundStatus(LabelledEnum):
    """Where an inbound email stands (backoffice/channels/email_in.py)."""

    RECEIVED = "received"  # stored, not processed yet (or processing failed: retried)
    POSTED = "posted"  # became a message in a ticket
    HELD = "held"  # waits for staff to accept or reject it
    IGNORED = "ignored"  # never a message: an auto-reply, a bounce, a loop, a flood
    REJECTED = "rejected"  # held, then rejected by staff

    @classmethod
    def _labels(cls):
        return {
            cls.RECEIVED: _l("Received"),
            cls.POSTED: _l("Posted"),
            cls.HELD: _l("Held for review"),
            cls.IGNORED: _l("Ignored"),
            cls.REJECTED: _l("Rejected"),
        }


class InboundReason(LabelledEnum):
    """Why an inbound email was held or ignored."""

    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    BULK = "bulk"
    LOOP = "loop"
    THROTTLED = "throttled"
    EMPTY = "empty"
    BAD_TOKEN = "bad_token"  # noqa: S105 (a reason, not a secret)
    WRONG_SENDER = "wrong_sender"
    STAFF_SENDER = "staff_sender"
    NOT_AUTHENTIC = "not_authentic"
    NO_SENDER = "no_sender"

    @classmethod
    def _labels(cls):
        return {
            cls.AUTO_REPLY: _l("Automatic reply (out of office, vacation)"),
            cls.BOUNCE: _l("Delivery failure report (bounce)"),
            cls.BULK: _l("Bulk or mailing-list mail"),
            cls.LOOP: _l("carebox's own email came back"),
            cls.THROTTLED: _l("Sender over the hourly limit"),
            cls.EMPTY: _l("No text and no files"),
            cls.BAD_TOKEN: _l("Reply address with a forged or damaged token"),
            cls.WRONG_SENDER: _l("Sender is not the ticket's customer"),
            cls.STAFF_SENDER: _l("Sender is a staff account"),
            cls.NOT_AUTHENTIC: _l("Sender's domain failed authentication (DMARC)"),
            cls.NO_SENDER: _l("No usable sender address"),
        }
