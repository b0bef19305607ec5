"""The ticket lifecycle: the only code that changes a ticket.

Every function checks who may do it, changes the ticket, appends a
`TicketEvent` and flushes. None of them commits or reads the request: the
caller (a view, the portal, the CLI) owns the transaction.

Callers use this package's names (`tickets.file_ticket(...)`, `tickets.merge(...)`);
the code lives by what it does:

- `transitions.py`: the status machine (`Action`, `TRANSITIONS`, `SYSTEM`), `_may` (the
  one permission question) and how an operation checks, moves, records and flushes;
- `routing.py`: routing rules (`find_route`, `route_by_situation`), `dispatch`,
  `escalate` and round-robin assignment;
- `filing.py`: `file_ticket`;
- `replies.py`: `post_message`, and the system's `warn_before_finish`;
- `particulars.py`: changes that keep the status (`set_priority`, `assign`, `link_parcel`);
- `finishing.py`: `finish` (and the customer's close), `reopen`, `rate`, `staff_rating`;
- `merging.py`: `merge`, and the duplicates a list shows (`duplicates_of`).
"""

from ...models import TicketStatus
from .. import (
    PermissionDenied,  # noqa: F401 (callers reach it here too)
    sla,
)
from .filing import MAX_BODY, MAX_SUBJECT, file_ticket
from .finishing import finish, rate, reopen, staff_rating
from .merging import duplicates_of, first_open_on_same_order, merge
from .particulars import assign, link_parcel, set_priority
from .replies import post_message, warn_before_finish
from .routing import dispatch, escalate, find_route, route_by_situation
from .transitions import (
    CUSTOMER_ACTIONS,
    KEEPS_STATUS,
    REOPEN_WINDOW,
    STAFF_PERMISSION,
    SYSTEM,
    SYSTEM_ACTIONS,
    TRANSITIONS,
    Action,
    SystemActor,
    _check,  # noqa: F401 (a test calls it)
    allowed_actions,
    can_transition,
    conflict_message,
)

__all__ = [
    "SYSTEM",
    "TRANSITIONS",
    "Action",
    "TicketStatus",
    "allowed_actions",
    "assign",
    "can_transition",
    "dispatch",
    "escalate",
    "duplicates_of",
    "file_ticket",
    "finish",
    "link_parcel",
    "merge",
    "post_message",
    "rate",
    "reopen",
    "route_by_situation",
    "set_priority",
    "staff_rating",
    "warn_before_finish",
    # The module's other public names, which callers (views, inbound, tests) read too:
    "CUSTOMER_ACTIONS",
    "KEEPS_STATUS",
    "MAX_BODY",
    "MAX_SUBJECT",
    "REOPEN_WINDOW",
    "STAFF_PERMISSION",
    "SYSTEM_ACTIONS",
    "SystemActor",
    "conflict_message",
    "find_route",
    "first_open_on_same_order",
]


# Kept for callers of the old name: the working-time rules live in domain/sla.py.
sla_hours = sla.sla_hours
