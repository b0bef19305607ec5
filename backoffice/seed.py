"""Idempotent loading of `seed/` (departments, routing rules, products, FAQ) and demo data."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import yaml
from flask import current_app
from flask_security import hash_password
from sqlalchemy import select

from .config import ROOT
from .domain import permissions as perm
from .domain import tickets, worktime
from .domain.catalog import import_products
from .domain.faq import import_faq
from .domain.orders import place_order
from .extensions import db
from .models import (
    BusinessHours,
    CannedReply,
    Department,
    Priority,
    Product,
    RoutingRule,
    ShipmentSituation,
    Ticket,
    TicketKind,
    User,
)
from .models.base import utcnow
from .security_setup import ensure_roles, user_datastore

SEED_DIR = ROOT / "seed"


@dataclass(frozen=True)
class DemoLogin:
    email: str
    password: str
    role: str
    department: str | None = None
    # A person's name, as customers see staff ("Rina from carebox"), not "Demo Master".
    name: str = ""


DEMO_LOGINS = (
    DemoLogin("master@carebox.example", "master-demo-2026", perm.MASTER_ADMIN, name="Rina Wijaya"),
    DemoLogin("cs@carebox.example", "cs-demo-2026", perm.CUSTOMER_SERVICE, name="Andi Saputra"),
    DemoLogin(
        "ops.admin@carebox.example", "ops-demo-2026", perm.ADMIN_DEPARTMENT, "OPS", "Budi Hartono"
    ),
    DemoLogin(
        "claims.admin@carebox.example",
        "claims-demo-2026",
        perm.ADMIN_DEPARTMENT,
        "CLAIMS",
        "Dewi Lestari",
    ),
    DemoLogin("customer@carebox.example", "customer-demo-2026", perm.CUSTOMER),
)


def _load(name: str):
    return yaml.safe_load((SEED_DIR / name).read_text(encoding="utf-8"))


def seed_departments() -> dict[str, Department]:
    """Create the departments of departments.yaml that do not exist yet (kept if edited later)."""
    existing = {d.code: d for d in db.session.scalars(select(Department))}
    for row in _load("departments.yaml"):
        if row["code"] not in existing:
            fields = {k: row.get(k) for k in ("code", "name_id", "name_en", "email")}
            dep = Department(
                **fields,
                timezone=row.get("timezone", worktime.DEFAULT_ZONE),
                observes_holidays=row.get("observes_holidays", True),
            )
            db.session.add(dep)
            existing[dep.code] = dep
    db.session.flush()
    _seed_hours(existing)
    return existing


def _seed_hours(departments: dict[str, Department], force: bool = False) -> None:
    """The seed file's business hours for each department that has none yet (unless
    CAREBOX_SEED_HOURS is off: the test suite's wall-clock departments)."""
    if not (force or current_app.config.get("CAREBOX_SEED_HOURS", True)):
        return
    have = set(db.session.scalars(select(BusinessHours.department_id).distinct()))
    for row in _load("departments.yaml"):
        dep = departments.get(row["code"])
        if dep is None or dep.id in have or not row.get("hours"):
            continue
        for weekday, start, end in worktime.rows_from_spec(row["hours"]):
            db.session.add(
                BusinessHours(department=dep, weekday=weekday, start_minute=start, end_minute=end)
            )
    db.session.flush()


def seed_products() -> dict[str, Product]:
    """Create the products of products.yaml that do not exist yet (kept if edited later:
    `carebox products import FILE` is how ops change the catalogue from a file)."""
    import_products(SEED_DIR / "products.yaml", only_new=True)
    return {p.code: p for p in db.session.scalars(select(Product))}


def seed_routing_rules(departments: dict[str, Department], products: dict[str, Product]) -> None:
    """Create the routes of departments.yaml that do not exist yet (kept if edited later).

    The catch-all route is seeded once, into an empty rule table (a new installation;
    migration 0022 added it to existing ones), and only with CAREBOX_SEED_CATCH_ALL:
    a master admin who deleted it to triage by hand does not see it come back."""
    rules = list(db.session.scalars(select(RoutingRule)))
    have = {(r.department_id, r.kind, r.product_id, r.situation) for r in rules}
    catch_all = not rules and current_app.config.get("CAREBOX_SEED_CATCH_ALL", True)
    for row in _load("departments.yaml"):
        dep = departments[row["code"]]
        routes = row.get("routes") or {}
        wanted = [(TicketKind(k), None, None) for k in routes.get("kinds") or []]
        wanted += [(None, products[c].id, None) for c in routes.get("products") or []]
        wanted += [(None, None, ShipmentSituation(s)) for s in routes.get("situations") or []]
        if routes.get("catch_all") and catch_all:
            wanted.append((None, None, None))
            catch_all = False
        for kind, product_id, situation in wanted:
            if (dep.id, kind, product_id, situation) not in have:
                db.session.add(
                    RoutingRule(
                        department=dep, kind=kind, product_id=product_id, situation=situation
                    )
                )
                have.add((dep.id, kind, product_id, situation))
    db.session.flush()


def seed_base() -> dict:
    """Roles, departments, routing rules, products and FAQ. Running it twice changes nothing,
    and it never undoes the back office's edits: it only adds what is missing (the
    roles' permission bundles excepted: they belong to the code and are brought up to date)."""
    ensure_roles()
    departments = seed_departments()
    products = seed_products()
    seed_routing_rules(departments, products)
    faq = import_faq(SEED_DIR / "faq.yaml", only_new=True)
    seed_canned_replies()
    from .domain.whatsapp_templates import seed_from_setting

    seed_from_setting()  # WHATSAPP_REPLY_TEMPLATE, the setting of before, as a template
    return {"departments": len(departments), "products": len(products), "faq": faq}


def seed_canned_replies() -> int:
    """Add the shared canned replies of canned_replies.yaml missing by shortcut; returns
    how many were added. Edits in the back office are kept; a deleted one comes back
    on the next seed, so switch one off with "active" instead."""
    have = set(
        db.session.scalars(
            select(CannedReply.shortcut).where(
                CannedReply.owner_id.is_(None), CannedReply.department_id.is_(None)
            )
        )
    )
    added = 0
    for row in _load("canned_replies.yaml"):
        if row["shortcut"] in have:
            continue
        db.session.add(CannedReply(seeded=True, **row))
        added += 1
    db.session.flush()
    return added


def ensure_user(
    email: str, password: str, role: str, *, name: str = "", department: Department | None = None
) -> User:
    user = user_datastore.find_user(email=email)
    if user is None:
        user = user_datastore.create_user(
            email=email,
            password=hash_password(password),
            name=name,
            active=True,
            roles=[role],
            department=department,
            confirmed_at=utcnow(),  # made by ops, not registered: nothing to confirm
        )
        db.session.flush()
    return user


def seed_demo() -> tuple[DemoLogin, ...]:
    """Demo staff and a demo customer with orders and tickets in every status."""
    departments = {d.code: d for d in db.session.scalars(select(Department))}
    users = {}
    for login in DEMO_LOGINS:
        users[login.email] = ensure_user(
            login.email,
            login.password,
            login.role,
            name=login.name,
            department=departments.get(login.department) if login.department else None,
        )
    customer = users["customer@carebox.example"]
    customer.name, customer.phone = "Siti Rahayu", "+62 812 5555 0101"
    master = users["master@carebox.example"]
    cs = users["cs@carebox.example"]
    if db.session.scalar(select(Ticket.id).where(Ticket.customer_id == customer.id).limit(1)):
        return DEMO_LOGINS
    products = {p.code: p for p in db.session.scalars(select(Product))}
    reg = place_order(
        customer,
        products["REG"],
        origin="Jakarta Selatan",
        destination="Bandung",
        weight_kg=Decimal("2.5"),
        receiver_name="Budi Santoso",
        receiver_phone="+62 811 000 111",
    )
    sameday = place_order(
        customer,
        products["SAMEDAY"],
        origin="Jakarta Pusat",
        destination="Jakarta Barat",
        weight_kg=Decimal("1"),
        receiver_name="Dewi",
        receiver_phone="+62 811 000 222",
    )
    t1 = tickets.file_ticket(
        customer,
        TicketKind.COMPLAINT,
        "Paket belum sampai",
        "Paket saya sudah 5 hari belum sampai di Bandung.",
        order=reg,
    )
    tickets.dispatch(t1, departments["OPS"], master)
    tickets.set_priority(t1, Priority.HIGH, cs)
    tickets.post_message(t1, cs, "Catatan: cek gudang Bandung.", internal=True)
    tickets.post_message(t1, cs, "Mohon maaf, paket Anda sedang kami lacak di gudang Bandung.")
    tickets.file_ticket(
        customer,
        TicketKind.COMPLAINT,
        "Kurir terlambat",
        "Pengiriman same-day datang malam hari.",
        order=sameday,
    )
    tickets.file_ticket(
        customer,
        TicketKind.CRITICISM,
        "Aplikasi lambat",
        "Halaman lacak paket sering lambat dibuka.",
    )
    t4 = tickets.file_ticket(
        customer,
        TicketKind.QUESTION,
        "Jam operasional gerai",
        "Gerai di Depok buka sampai jam berapa?",
    )
    tickets.post_message(t4, cs, "Gerai Depok buka setiap hari pukul 08.00-21.00.")
    tickets.finish(t4, cs)
    db.session.flush()
    return DEMO_LOGINS
