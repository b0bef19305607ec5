"""A ticket's shipment situation (late, stuck, failed_delivery, delivered_disputed, damaged):
derived in domain/situations.py, stored on the ticket, kept true as events arrive and
time passes, shown in the lists, the desk and the customer's chat, and routed on."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from sqlalchemy import delete, select, text

from backoffice.domain import attachments, shipments, situations
from backoffice.domain import permissions as perm
from backoffice.domain import tickets as lifecycle
from backoffice.domain.shipments import EventIn
from backoffice.models import (
    RoutingRule,
    ShipmentSituation,
    Ticket,
    TicketKind,
    TicketStatus,
    TrackingSource,
)
from backoffice.models.base import utcnow
from backoffice.seed import seed_base

from .admin_support import PNG
from .conftest import Browser
from .portal_support import text as page_text

S = ShipmentSituation


def _events(db, order, *steps, now=None):
    """steps: (how long ago, event) pairs, recorded like an import."""
    now = now or utcnow()
    shipments.record_events(
        [EventIn(order.resi, kind, now - ago, "Hub Cakung, Jakarta") for ago, kind in steps],
        source=TrackingSource.IMPORT,
        now=now,
    )
    db.session.flush()


def _file(make, order, kind=TicketKind.COMPLAINT, files=(), now=None):
    return lifecycle.file_ticket(
        order.customer, kind, "Paket saya", "Di mana paket saya?", order=order,
        attachments=list(files), now=now,
    )  # fmt: skip


def _photo():
    return attachments.store(io.BytesIO(PNG), "rusak.png")


D = timedelta(days=1)


def test_each_situation_is_derived_and_routed_by_the_seed_rules(db, make):
    ops, claims = make.department("OPS"), make.department("CLAIMS")
    customer = make.user()

    late = make.order(customer, product="ECO")  # 4-7 days
    _events(db, late, (9 * D, "picked_up"), (1 * D, "at_hub"))
    t = _file(make, late, TicketKind.QUESTION)
    assert t.situation is S.LATE and t.department_id == ops.id
    assert t.status is TicketStatus.TEAM

    stuck = make.order(customer, product="ECO")
    _events(db, stuck, (4 * D, "picked_up"))
    t = _file(make, stuck, TicketKind.QUESTION)
    assert t.situation is S.STUCK and t.department_id == ops.id

    damaged = make.order(customer)
    _events(db, damaged, (2 * D, "picked_up"), (1 * D, "delivered"))
    t = _file(make, damaged, files=[_photo()])
    assert t.situation is S.DAMAGED and t.department_id == claims.id

    disputed = make.order(customer)
    _events(db, disputed, (2 * D, "picked_up"), (1 * D, "delivered"))
    t = _file(make, disputed)
    assert t.situation is S.DELIVERED_DISPUTED
    assert t.status is TicketStatus.PROGRESS  # no seed rule for it (catch-all off in tests)

    failed = make.order(customer)
    _events(db, failed, (1 * D, "picked_up"), (D / 2, "delivery_failed"))
    t = _file(make, failed)
    assert t.situation is S.FAILED_DELIVERY and t.status is TicketStatus.PROGRESS

    fine = make.order(customer, product="ECO")
    _events(db, fine, (1 * D, "picked_up"))
    t = _file(make, fine, TicketKind.QUESTION)
    assert t.situation is None
    # Due: when it turns stuck (3 days after its last event), before it is late (7 days).
    assert t.situation_due_at == fine.last_event_at + 3 * D

    assert _file(make, make.order(customer), TicketKind.CRITICISM).situation is None
    # A photo of a parcel the courier never handled (no event yet) is not a damage report.
    placed = _file(make, make.order(customer), files=[_photo()])
    assert placed.situation is None and placed.status is TicketStatus.PROGRESS
    no_parcel = lifecycle.file_ticket(customer, TicketKind.COMPLAINT, "x", "y")
    assert no_parcel.situation is None and no_parcel.situation_due_at is None


def test_the_situation_follows_events_and_photos_without_bumping_the_version(db, make):
    order = make.order(product="ECO")
    _events(db, order, (1 * D, "picked_up"))
    t = _file(make, order, TicketKind.QUESTION)
    db.session.commit()
    assert t.situation is None
    version = t.version_id

    _events(db, order, (D / 4, "delivery_failed"))
    db.session.commit()
    db.session.refresh(t)
    assert t.situation is S.FAILED_DELIVERY
    assert t.version_id == version  # a badge is not an edit: no conflict on an open desk

    complaint = _file(make, order)
    assert complaint.situation is S.FAILED_DELIVERY
    lifecycle.post_message(complaint, order.customer, "Fotonya", attachments=[_photo()])
    assert complaint.situation is S.DAMAGED

    # A finished ticket keeps the situation it finished with.
    lifecycle.finish(t, make.user(perm.CUSTOMER_SERVICE))
    _events(db, order, (D / 8, "delivered"))
    db.session.commit()
    db.session.refresh(t)
    assert t.situation is S.FAILED_DELIVERY


def test_the_worker_turns_tickets_stuck_and_late_as_time_passes(db, make, runner):
    order = make.order(product="ECO")
    now = utcnow()
    _events(db, order, (1 * D, "picked_up"), now=now)
    t = _file(make, order, TicketKind.QUESTION, now=now)
    other = _file(make, make.order(product="ECO"), TicketKind.QUESTION, now=now)
    db.session.commit()
    assert t.situation is None and other.situation_due_at is not None

    assert situations.refresh_due(now + D) == 0  # nothing is due yet
    looked = situations.refresh_due(now + 2 * D + timedelta(hours=1))
    assert looked == 1  # `t` only: the other parcel was never picked up (not moving)
    db.session.commit()
    db.session.refresh(t)
    assert t.situation is S.STUCK and t.situation_due_at is None

    # The CLI round does the same, committed: a parcel whose ticket was filed 4 days ago.
    earlier = now - 4 * D
    late_one = make.order(product="ECO")
    _events(db, late_one, (timedelta(hours=1), "picked_up"), now=earlier)
    old = _file(make, late_one, TicketKind.QUESTION, now=earlier)
    db.session.commit()
    assert old.situation is None and old.situation_due_at < now
    result = runner.invoke(args=["tracking", "situations"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert db.session.get(Ticket, old.id).situation is S.STUCK
    result = runner.invoke(args=["tracking", "situations", "--all"])
    assert result.exit_code == 0 and "changed" in result.output


def test_the_worker_and_the_stuck_query_read_an_index(db, make):
    """EXPLAIN of the two time-driven queries: an index range, not a full scan (on SQLite;
    bench/situations.py prints MariaDB's plans at scale)."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("the plan of a tiny MariaDB table is no evidence; see bench/situations.py")
    now = utcnow()
    for stmt, index in (
        (situations.due_query(now), "ix_ticket_status_situation_due"),
        (shipments.stuck_orders(3, now=now), "ix_order_status_last_event"),
    ):
        sql = stmt.compile(db.engine, compile_kwargs={"literal_binds": True})
        plan = " ".join(
            str(row[-1]) for row in db.session.execute(text(f"EXPLAIN QUERY PLAN {sql}"))
        )
        assert index in plan, plan


def test_routing_on_situation_beats_kind_and_product_and_the_catch_all_comes_last(db, make):
    claims, billing, cs = (
        make.department("CLAIMS"),
        make.department("BILLING"),
        make.department("CS"),
    )
    db.session.add_all(
        [
            RoutingRule(department=billing, kind=TicketKind.COMPLAINT),
            RoutingRule(department=cs),  # the catch-all
        ]
    )
    db.session.flush()
    customer = make.user()
    order = make.order(customer)
    _events(db, order, (2 * D, "picked_up"), (1 * D, "delivered"))
    assert _file(make, order, files=[_photo()]).department_id == claims.id  # damaged
    assert _file(make, order).department_id == billing.id  # kind rule (no situation rule)
    criticism = _file(make, order, TicketKind.CRITICISM)
    assert criticism.department_id == cs.id  # nothing else matched
    assert criticism.status is TicketStatus.TEAM


def test_the_seed_gives_a_new_installation_one_catch_all_that_stays_deleted(app, db, make):
    cs = make.department("CS")
    db.session.execute(delete(RoutingRule))
    app.config["CAREBOX_SEED_CATCH_ALL"] = True
    try:
        seed_base()
        seed_base()

        def catch_alls():
            return db.session.scalars(
                select(RoutingRule).where(
                    RoutingRule.kind.is_(None),
                    RoutingRule.product_id.is_(None),
                    RoutingRule.situation.is_(None),
                )
            ).all()

        assert [r.department_id for r in catch_alls()] == [cs.id]
        situated = {
            (r.situation.value, r.department.code)
            for r in db.session.scalars(
                select(RoutingRule).where(RoutingRule.situation.is_not(None))
            )
        }
        assert situated == {("late", "OPS"), ("stuck", "OPS"), ("damaged", "CLAIMS")}
        # A new complaint reaches customer service without the master admin.
        t = make.ticket("progress", kind="complaint")
        assert t.status is TicketStatus.TEAM and t.department_id == cs.id
        # The master deletes it to triage by hand: the next seed leaves it deleted.
        db.session.delete(catch_alls()[0])
        db.session.flush()
        seed_base()
        assert catch_alls() == []
        assert make.ticket("progress", kind="complaint").status is TicketStatus.PROGRESS
    finally:
        app.config["CAREBOX_SEED_CATCH_ALL"] = False


def test_routing_rules_by_situation_through_the_admin_both_ways(db, login_as, make):
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    billing = make.department("BILLING")
    resp = b.post(
        "/admin/routing_rules/new/",
        {
            "department": str(billing.id),
            "situation": "failed_delivery",
            "kind": "",
            "product": "__None",
            "position": "10",
            "active": "y",
        },
    )
    assert resp.status_code == 302
    listed = b.get("/admin/routing_rules/").get_data(as_text=True)
    assert "Delivery failed" in listed
    order = make.order()
    _events(db, order, (1 * D, "picked_up"), (D / 2, "delivery_failed"))
    assert _file(make, order).department_id == billing.id

    for role in (perm.CUSTOMER_SERVICE, perm.ADMIN_DEPARTMENT):
        other, _ = login_as(role)
        assert other.get("/admin/routing_rules/new/").status_code == 403


@pytest.mark.parametrize("locale", ["en", "id"])
def test_lists_desk_and_chat_show_the_badge_and_the_timeline(app, db, login_as, make, locale):
    cs, _ = login_as(perm.CUSTOMER_SERVICE, locale=locale)
    customer = make.user(locale=locale)
    order = make.order(customer, product="ECO")
    _events(db, order, (9 * D, "picked_up"), (1 * D, "at_hub"))
    t = _file(make, order, TicketKind.QUESTION)  # late -> OPS, Team
    db.session.commit()
    label = {"en": "Late", "id": "Terlambat"}[locale]

    page = page_text(cs.get("/admin/tickets/team/"))
    assert t.number in page and label in page

    desk = cs.get(f"/admin/tickets/desk/{t.number}/").get_data(as_text=True)
    assert "situation-late" in desk and "tracking-timeline" in desk
    assert "Hub Cakung, Jakarta" in desk

    portal = Browser(app.test_client())
    portal.login(customer)
    chat = portal.get(f"/tickets/{t.number}").get_data(as_text=True)
    assert "situation-late" in chat and "Hub Cakung, Jakarta" in chat


def _routed(db, ticket):
    from backoffice.models import EventAction, TicketEvent

    return db.session.scalars(
        select(TicketEvent).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.action == EventAction.ROUTED
        )
    ).all()


def test_a_progress_ticket_that_turns_stuck_is_routed_by_the_seeded_rule(db, make):
    """Routing after filing: the worker (time) and arriving events turn a parcel's
    situation; a Progress ticket nobody dispatched follows the rule on it, as the
    system; a ticket staff dispatched elsewhere, and a Team ticket, stay where they are."""
    ops, claims = make.department("OPS"), make.department("CLAIMS")
    master = make.user(perm.MASTER_ADMIN)
    now = utcnow()

    def filed():
        order = make.order(product="ECO")
        _events(db, order, (1 * D, "picked_up"), now=now)
        t = _file(make, order, TicketKind.CRITICISM, now=now)
        assert t.status is TicketStatus.PROGRESS and t.situation is None
        return t

    waiting, dispatched, answered = filed(), filed(), filed()
    lifecycle.dispatch(dispatched, claims, master, now=now)  # a person sent it to Claims
    lifecycle.post_message(answered, master, "Kami cek dulu.", now=now)  # Responded, no department
    db.session.commit()
    version = waiting.version_id

    assert situations.refresh_due(now + 2 * D + timedelta(hours=1)) == 3
    db.session.commit()
    db.session.expire_all()
    waiting = db.session.get(Ticket, waiting.id)
    assert waiting.situation is S.STUCK
    assert waiting.status is TicketStatus.TEAM and waiting.department_id == ops.id
    (ev,) = _routed(db, waiting)
    assert ev.actor_id is None  # the system's, on the timeline
    rule = db.session.get(RoutingRule, ev.rule_id)
    assert rule.situation is S.STUCK and rule.department_id == ops.id
    assert waiting.version_id > version  # a move, unlike a badge: open desks must reload

    dispatched = db.session.get(Ticket, dispatched.id)
    assert dispatched.situation is S.STUCK and dispatched.department_id == claims.id
    assert dispatched.status is TicketStatus.TEAM and not _routed(db, dispatched)
    answered = db.session.get(Ticket, answered.id)
    assert answered.situation is S.STUCK and answered.department_id is None
    assert answered.status is TicketStatus.RESPONDED and not _routed(db, answered)

    # Events arriving: a Progress ticket whose parcel stopped moving days ago is late now.
    order = make.order(product="ECO")
    _events(db, order, (1 * D, "picked_up"), now=now)
    t = _file(make, order, TicketKind.CRITICISM, now=now)
    team = _file(make, make.order(product="ECO"), TicketKind.CRITICISM, now=now)
    lifecycle.dispatch(team, claims, master, now=now)
    _events(db, order, (D / 2, "at_hub"), now=now + 8 * D)
    _events(db, team.order, (9 * D, "picked_up"), (8 * D, "at_hub"), now=now + 9 * D)
    db.session.commit()
    db.session.expire_all()
    t, team = db.session.get(Ticket, t.id), db.session.get(Ticket, team.id)
    assert t.situation is S.LATE and t.department_id == ops.id and len(_routed(db, t)) == 1
    assert team.situation is not None and team.department_id == claims.id
    assert not _routed(db, team)


def test_a_photo_of_the_damage_routes_a_progress_complaint_to_claims(db, make):
    claims = make.department("CLAIMS")
    order = make.order()
    _events(db, order, (2 * D, "picked_up"), (1 * D, "delivered"))
    complaint = _file(make, order)
    assert complaint.situation is S.DELIVERED_DISPUTED and complaint.department_id is None
    lifecycle.post_message(complaint, order.customer, "Rusak", attachments=[_photo()])
    db.session.commit()
    assert complaint.situation is S.DAMAGED
    assert complaint.status is TicketStatus.TEAM and complaint.department_id == claims.id
    (ev,) = _routed(db, complaint)
    assert ev.actor_id is None and db.session.get(RoutingRule, ev.rule_id).situation is S.DAMAGED


def test_a_worker_batch_reads_the_rules_once_and_team_tickets_cost_nothing_more(db, make):
    """Set-based: a round of 20 due tickets reads the candidates once and the rules at
    most once; a
    round whose tickets are all with a department reads neither (4 statements, as before
    routing after filing existed)."""
    from .admin_support import counting_queries

    claims = make.department("CLAIMS")
    master = make.user(perm.MASTER_ADMIN)
    now = utcnow()

    def filed(n):
        found = []
        for _ in range(n):
            order = make.order(product="ECO")
            _events(db, order, (1 * D, "picked_up"), now=now)
            found.append(_file(make, order, TicketKind.CRITICISM, now=now))
        return found

    team = filed(20)
    for t in team:
        lifecycle.dispatch(t, claims, master, now=now)
    db.session.commit()
    engine = db.session.get_bind()
    with counting_queries(engine) as sql:
        assert situations.refresh_due(now + 2 * D + timedelta(hours=1)) == 20
    assert not [s for s in sql if "routing_rule" in s]
    quiet = len(sql)
    assert quiet <= 5, sql

    progress = filed(20)
    db.session.commit()
    with counting_queries(engine) as sql:
        assert situations.refresh_due(now + 2 * D + timedelta(hours=1)) == 20
    db.session.commit()
    # once at most: the process's copy while the setup is unchanged (domain/setup_cache.py)
    assert len([s for s in sql if "FROM routing_rule" in s]) <= 1
    assert all(db.session.get(Ticket, t.id).status is TicketStatus.TEAM for t in progress)
    # Each routed ticket is one lifecycle dispatch (its own savepoint, SLA calendar,
    # notices, UPDATE, event: 11 statements today); the selection itself is per batch.
    assert len(sql) <= quiet + 2 + 12 * 20, len(sql)
