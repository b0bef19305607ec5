"""Shipments: the resi (air waybill number) every order carries, and what it says.

A resi has the UPU S10 shape (docs/architecture.md §7): two letters, an eight-digit serial,
a mod-11 check digit and the country, e.g. `CB123456785ID`. The check digit
catches a mistyped digit before any lookup, so a typo is answered "mistyped",
never "unknown". Serials are random, not a counter: with public tracking, a
sequence would let anyone walk through every other parcel's movements.

Tracking events (what happened to a parcel, when and where) are appended and
never edited. Every way in — the CSV import, the API, a staff member on the order
page, the seed — goes through `record_events`, which checks each event on its own
(a bad one is refused with its reason, the others land), skips an event already
recorded (the same resi, event and moment: imports and the API are idempotent)
and moves the order's status to follow its latest event. An event that became its
parcel's latest and `warrants_customer_notification` is handed to the customer's
channels in the same transaction (`_tell_customers`: the shipment email of
domain/shipment_notices.py, which asks the customer's consent).

Nothing here reads the request or commits; the caller owns the transaction.

Callers use this package's names (`shipments.record_events(...)`, `shipments.shipment(...)`);
the code lives by what it does:

- `resi.py`: the S10 shape and check digit, reading a typed resi (`check_resi`,
  `find_resis`), drawing a new one (`assign_resi`), `customer_parcel`;
- `events.py`: `EventIn`, `EventResult`, the event vocabulary (`EVENT_STATUS`, `RANK`,
  `STATUS_EVENT`, `FEED_KINDS`: all but `cancelled`, which only `orders.cancel` makes)
  and the checks that need no database (`check_events`);
- `recording.py`: `record_events`, `write_events`, `add_event`, `record_status_event`
  (a status change made in carebox) and `warrants_customer_notification`;
- `parcels.py`: `timeline`, `shipment`, the status text, `stuck_orders`, and
  `public_shipments` (what public tracking shows, in one statement).
"""

from .events import (
    DEFAULT_OFFSET,
    EARLIEST,
    EVENT_STATUS,
    FEED_KINDS,
    FUTURE_SLACK,
    INSERTED,
    MAX_LOCATION,
    MAX_NOTE,
    RANK,
    REFUSED,
    STATUS_EVENT,
    UNCHANGED,
    Checked,
    EventIn,
    EventResult,
    check_events,
    parse_occurred_at,
)
from .parcels import (
    LOCAL_TIME_PATTERN,
    MOVING,
    ZONES,
    Shipment,
    eta_days,
    eta_days_of,
    late_from,
    latest_status_text,
    local_time,
    promised_date,
    public_shipments,
    shipment,
    status_text_of,
    stuck_orders,
    timeline,
    timeline_mark,
    timelines,
)
from .recording import (
    CUSTOMER_NOTICE_KINDS,
    INSERT_CHUNK,
    LOOKUP_CHUNK,
    NOTICE_MAX_AGE,
    UPDATE_CHUNK,
    add_event,
    record_events,
    record_status_event,
    warrants_customer_notification,
    write_events,
)
from .resi import (
    COUNTRY,
    DEFAULT_PREFIX,
    RESI_ATTEMPTS,
    RESI_LENGTH,
    RESI_RE,
    WEIGHTS,
    ResiCheck,
    assign_resi,
    check_digit,
    check_resi,
    customer_parcel,
    find_order,
    find_resis,
    is_valid_resi,
    make_resi,
    normalise_resi,
    random_resi,
    resi_message,
)

__all__ = [
    "COUNTRY",
    "CUSTOMER_NOTICE_KINDS",
    "Checked",
    "DEFAULT_OFFSET",
    "DEFAULT_PREFIX",
    "EARLIEST",
    "EVENT_STATUS",
    "EventIn",
    "EventResult",
    "FEED_KINDS",
    "FUTURE_SLACK",
    "INSERTED",
    "INSERT_CHUNK",
    "LOOKUP_CHUNK",
    "MAX_LOCATION",
    "MAX_NOTE",
    "MOVING",
    "NOTICE_MAX_AGE",
    "RANK",
    "REFUSED",
    "RESI_ATTEMPTS",
    "RESI_LENGTH",
    "RESI_RE",
    "ResiCheck",
    "STATUS_EVENT",
    "Shipment",
    "UNCHANGED",
    "UPDATE_CHUNK",
    "WEIGHTS",
    "ZONES",
    "add_event",
    "assign_resi",
    "check_digit",
    "check_events",
    "check_resi",
    "customer_parcel",
    "eta_days",
    "eta_days_of",
    "find_order",
    "find_resis",
    "is_valid_resi",
    "late_from",
    "latest_status_text",
    "local_time",
    "LOCAL_TIME_PATTERN",
    "make_resi",
    "normalise_resi",
    "parse_occurred_at",
    "promised_date",
    "public_shipments",
    "random_resi",
    "record_events",
    "record_status_event",
    "resi_message",
    "shipment",
    "status_text_of",
    "stuck_orders",
    "timeline",
    "timeline_mark",
    "timelines",
    "warrants_customer_notification",
    "write_events",
]
