"""Plain factory functions for tests: real rows, made through the domain where it has rules."""

from __future__ import annotations

import itertools
from decimal import Decimal

from flask_security import hash_password
from sqlalchemy import select

from backoffice.domain import permissions as perm
from backoffice.domain import tickets
from backoffice.domain.orders import place_order
from backoffice.models import Department, Product, TicketKind, TicketStatus, User
from backoffice.models.base import utcnow
from backoffice.security_setup import user_datastore

_seq = itertools.count(1)


class Factories:
    def __init__(self, db):
        self.db = db

    def department(self, code="OPS") -> Department:
        return self.db.session.scalar(select(Department).where(Department.code == code))

    def product(self, code="REG") -> Product:
        return self.db.session.scalar(select(Product).where(Product.code == code))

    def user(
        self,
        role=perm.CUSTOMER,
        *,
        email=None,
        department=None,
        password="password",
        name=None,
        **fields,
    ) -> User:
        n = next(_seq)
        if role == perm.ADMIN_DEPARTMENT and department is None:
            department = "OPS"
        if isinstance(department, str):
            department = self.department(department)
        user = user_datastore.create_user(
            email=email or f"{role.replace('_', '-')}{n}@example.com",
            password=hash_password(password),
            name=name or f"{role.title()} {n}",
            active=True,
            roles=[role] if role else [],
            department=department,
            **{"confirmed_at": utcnow(), **fields},
        )
        self.db.session.flush()
        return user

    def order(self, customer=None, product="REG", weight="2", **fields):
        customer = customer or self.user()
        return place_order(
            customer,
            self.product(product),
            origin=fields.pop("origin", "Jakarta"),
            destination=fields.pop("destination", "Bandung"),
            weight_kg=Decimal(weight),
            **fields,
        )

    def ticket(
        self,
        status=TicketStatus.PROGRESS,
        *,
        customer=None,
        kind=TicketKind.CRITICISM,
        department="OPS",
        subject=None,
        body="Tolong dibantu.",
        order=None,
        staff=None,
        now=None,
    ):
        """A ticket brought to `status` by the lifecycle module itself.

        Criticism has no routing rule in the seed data, so it starts in progress.
        """
        customer = customer or self.user()
        status = TicketStatus(status)
        t = tickets.file_ticket(
            customer, kind, subject or f"Subject {next(_seq)}", body, order=order, now=now
        )
        if status is TicketStatus.PROGRESS:
            return t
        master = staff or self._master()
        if t.status is TicketStatus.PROGRESS:
            tickets.dispatch(t, self.department(department), master, now=now)
        if status is TicketStatus.TEAM:
            return t
        tickets.post_message(t, master, "Kami sedang menanganinya.", now=now)
        if status is TicketStatus.RESPONDED:
            return t
        tickets.finish(t, master, now=now)
        return t

    def _master(self) -> User:
        found = self.db.session.scalar(
            select(User).where(User.email == "factory-master@example.com")
        )
        return found or self.user(perm.MASTER_ADMIN, email="factory-master@example.com")
