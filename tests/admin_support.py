"""Shared helpers of the back-office tests (tests/test_admin_*.py)."""

from __future__ import annotations

import io
import re
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser

from flask import has_app_context
from sqlalchemy import event

from backoffice.domain import attachments, tickets
from backoffice.extensions import db as _db
from backoffice.models import Order, Ticket, TicketAttachment, User

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@dataclass
class World:
    """Tickets in every list, in two departments, with attachments and an order."""

    customer: User
    order: Order
    progress: Ticket
    team_ops: Ticket
    team_claims: Ticket
    responded: Ticket
    finished: Ticket
    att_ops: TicketAttachment
    att_claims: TicketAttachment
    att_progress: TicketAttachment
    staff: User  # a customer-service account, for the people screens


def attach(ticket: Ticket, author: User, body: str = "Lihat lampiran") -> TicketAttachment:
    stored = attachments.store(io.BytesIO(PNG), "foto.png")
    tickets.post_message(ticket, author, body, attachments=[stored])
    return stored


def build_world(make, db) -> World:
    customer = make.user()
    order = make.order(customer=customer)
    progress = make.ticket("progress", customer=customer, order=order)
    team_ops = make.ticket("team", customer=customer, department="OPS")
    team_claims = make.ticket("team", department="CLAIMS")
    responded = make.ticket("responded", department="OPS")
    finished = make.ticket("finished", department="OPS")
    att_ops = attach(team_ops, team_ops.customer)
    att_claims = attach(team_claims, team_claims.customer)
    att_progress = attach(progress, progress.customer)
    staff = make.user("customer_service")
    db.session.commit()
    return World(
        customer,
        order,
        progress,
        team_ops,
        team_claims,
        responded,
        finished,
        att_ops,
        att_claims,
        att_progress,
        staff,
    )


@contextmanager
def counting_queries(engine):
    """Collect every SQL statement sent while the block runs, on `engine` and on the
    app's other engines (the idle polls read on their own, backoffice/idle_polls.py)."""
    statements: list[str] = []
    engines = {engine, *(_db.engines.values() if has_app_context() else ())}

    def before(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    for one in engines:
        event.listen(one, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        for one in engines:
            event.remove(one, "before_cursor_execute", before)


ROW_RE = re.compile(r'<a href="/admin/tickets/desk/([A-Z0-9-]+)/">')


def listed_numbers(html: str) -> set[str]:
    """Ticket numbers linked from a list page's rows."""
    return set(ROW_RE.findall(html))


def flashes(html: str) -> str:
    """The text of the flashed alerts on a page (for assertions on messages)."""
    return " ".join(re.findall(r'class="alert[^"]*"[^>]*>(.*?)</div>', html, re.S))


class _FormReader(HTMLParser):
    def __init__(self):
        super().__init__()
        self.data: dict[str, str] = {}
        self._select = self._textarea = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name:
            if a.get("type") not in ("checkbox", "radio", "submit") or "checked" in a:
                self.data[name] = a.get("value") or ("y" if a.get("type") == "checkbox" else "")
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and "selected" in a:
            self.data[self._select] = a.get("value", "")
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = ""

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea] += data


def form_data(html: str) -> dict[str, str]:
    """What a browser would post from a Flask-Admin create or edit page: its form's
    fields as they are shown."""
    start = html.index('class="admin-form"')
    reader = _FormReader()
    reader.feed(html[start : html.index("</form>", start)])
    return reader.data
