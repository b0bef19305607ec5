"""The ticket lifecycle: every (from, to, actor) pair, and each operation's guarantees."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from backoffice.domain import ConflictError, DomainError, PermissionDenied, tickets
from backoffice.domain import permissions as perm
from backoffice.models import (
    EventAction,
    Priority,
    TicketEvent,
    TicketKind,
    TicketMessage,
    TicketStatus,
)
from backoffice.models.base import utcnow

P, T, R, F = TicketStatus.PROGRESS, TicketStatus.TEAM, TicketStatus.RESPONDED, TicketStatus.FINISHED
ACTORS = ("system", "master", "cs", "dept_own", "dept_other", "owner", "other_customer")

# Who may move a ticket (with a department once dispatched) from one status to another.
# Written from docs/architecture.md §2 independently of TRANSITIONS, so the two check each other.
EXPECTED = {
    (P, T): {"master", "system"},
    (P, R): {"master"},
    (P, P): {"owner"},
    (P, F): {"master", "owner"},
    (T, R): {"master", "cs", "dept_own"},
    (T, T): {"master", "cs", "owner"},
    (T, F): {"master", "cs", "owner"},
    (R, R): {"master", "cs"},
    (R, T): {"master", "cs", "owner"},
    (R, F): {"master", "cs", "owner"},
    (F, T): {"master", "cs", "owner"},
}


@pytest.fixture
def actors(make):
    owner = make.user(perm.CUSTOMER)
    return {
        "system": None,
        "master": make.user(perm.MASTER_ADMIN),
        "cs": make.user(perm.CUSTOMER_SERVICE),
        "dept_own": make.user(perm.ADMIN_DEPARTMENT, department="OPS"),
        "dept_other": make.user(perm.ADMIN_DEPARTMENT, department="CLAIMS"),
        "owner": owner,
        "other_customer": make.user(perm.CUSTOMER),
    }


@pytest.mark.parametrize("source", [P, T, R, F])
def test_every_transition_for_every_actor(make, actors, source):
    ticket = make.ticket(source, customer=actors["owner"], department="OPS")
    for target, name in itertools.product(TicketStatus, ACTORS):
        expected = name in EXPECTED.get((source, target), set())
        got = tickets.can_transition(ticket, target, actors[name])
        assert got is expected, f"{source}->{target} by {name}: expected {expected}"


def test_transition_table_matches_design():
    pairs = {pair for pair, actions in tickets.TRANSITIONS.items() if actions}
    assert pairs == set(EXPECTED) | {(R, P), (F, P)}


def test_customer_reply_on_responded_without_department_goes_to_progress(make, actors):
    ticket = make.ticket(P, customer=actors["owner"])
    tickets.post_message(ticket, actors["master"], "Jawaban langsung.")
    assert ticket.status is R and ticket.department_id is None
    assert tickets.can_transition(ticket, P, actors["owner"])
    assert not tickets.can_transition(ticket, T, actors["owner"])
    tickets.post_message(ticket, actors["owner"], "Terima kasih, tapi belum beres.")
    assert ticket.status is P


def _events(db, ticket):
    return db.session.scalars(
        select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id)
    ).all()


def test_walk_through_the_whole_lifecycle_writes_an_event_for_each_change(db, make, actors):
    owner, master, cs, dept = actors["owner"], actors["master"], actors["cs"], actors["dept_own"]
    t = tickets.file_ticket(owner, TicketKind.CRITICISM, "Kurir kasar", "Kurirnya membentak.")
    assert t.status is P and t.number == f"CX-{t.created_at.year}-{t.id:06d}"
    tickets.dispatch(t, make.department("OPS"), master)
    assert t.status is T and t.department.code == "OPS"
    tickets.post_message(t, dept, "Cek rekaman kurir.", internal=True)
    assert t.status is T
    tickets.post_message(t, dept, "Mohon maaf, kami tindak lanjuti.")
    assert t.status is R and t.first_response_at is not None
    tickets.post_message(t, owner, "Terima kasih.")
    assert t.status is T
    tickets.set_priority(t, Priority.HIGH, cs)
    tickets.assign(t, cs, cs)
    tickets.dispatch(t, make.department("CLAIMS"), cs)
    assert t.department.code == "CLAIMS"
    tickets.finish(t, cs)
    assert t.status is F and t.finished_at is not None
    tickets.rate(t, owner, 5, "Cepat!")
    tickets.reopen(t, owner)
    assert t.status is T and t.finished_at is None and t.reopen_count == 1
    # (the SLA's DUE_MOVED events are tests/test_sla.py's)
    actions = [e.action for e in _events(db, t) if e.action is not EventAction.DUE_MOVED]
    assert actions == [
        EventAction.FILED,
        EventAction.DISPATCHED,
        EventAction.NOTE,
        EventAction.REPLIED,
        EventAction.CUSTOMER_REPLIED,
        EventAction.PRIORITY,
        EventAction.ASSIGNED,
        EventAction.ESCALATED,
        EventAction.FINISHED,
        EventAction.RATED,
        EventAction.REOPENED,
    ]
    finished = [e for e in _events(db, t) if e.action is EventAction.FINISHED][0]
    assert (finished.from_status, finished.to_status, finished.actor_id) == (T, F, cs.id)


def test_refusals_change_nothing(db, make, actors):
    ticket = make.ticket(T, customer=actors["owner"], department="OPS")
    before = (ticket.status, ticket.version_id, len(_events(db, ticket)))
    refusals = [
        lambda: tickets.post_message(ticket, actors["dept_other"], "Bukan urusan saya"),
        lambda: tickets.post_message(ticket, actors["other_customer"], "Halo"),
        lambda: tickets.finish(ticket, actors["dept_own"]),
        lambda: tickets.set_priority(ticket, Priority.URGENT, actors["dept_own"]),
        lambda: tickets.dispatch(ticket, make.department("CLAIMS"), actors["dept_own"]),
        lambda: tickets.post_message(ticket, actors["owner"], "Catatan", internal=True),
        lambda: tickets.rate(ticket, actors["owner"], 4),
        lambda: tickets.reopen(ticket, actors["cs"]),
    ]
    for refuse in refusals:
        with pytest.raises(DomainError):
            refuse()
    assert (ticket.status, ticket.version_id, len(_events(db, ticket))) == before


def test_only_customers_file_tickets_and_only_on_their_own_orders(make, actors):
    with pytest.raises(PermissionDenied):
        tickets.file_ticket(actors["cs"], TicketKind.QUESTION, "Tes", "Tes")
    someone_elses = make.order(customer=actors["other_customer"])
    with pytest.raises(DomainError):
        tickets.file_ticket(actors["owner"], TicketKind.COMPLAINT, "x", "y", order=someone_elses)


@pytest.mark.parametrize(
    "subject, body",
    [("", "isi"), ("   ", "isi"), ("judul", ""), ("x" * 201, "isi"), ("judul", "y" * 10_001)],
)
def test_bad_text_is_refused(actors, subject, body):
    with pytest.raises(DomainError):
        tickets.file_ticket(actors["owner"], TicketKind.QUESTION, subject, body)


def test_internal_notes_are_staff_only_and_flagged(db, make, actors):
    ticket = make.ticket(T, customer=actors["owner"])
    note = tickets.post_message(ticket, actors["cs"], "Internal", internal=True)
    assert note.internal and note.from_staff
    reply = tickets.post_message(ticket, actors["owner"], "Publik")
    assert not reply.internal and not reply.from_staff


def test_reopen_window_is_seven_days_for_customers_not_staff(make, actors):
    finished_long_ago = utcnow() - timedelta(days=10)
    ticket = make.ticket(F, customer=actors["owner"], now=finished_long_ago)
    assert not tickets.can_transition(ticket, T, actors["owner"])
    with pytest.raises(DomainError, match="7"):
        tickets.reopen(ticket, actors["owner"])
    tickets.reopen(ticket, actors["cs"])
    assert ticket.status is T

    recent = make.ticket(F, customer=actors["owner"], now=utcnow() - timedelta(days=6))
    tickets.reopen(recent, actors["owner"])
    assert recent.status is T


@pytest.mark.parametrize("score", [0, 6, "x", None])
def test_rating_is_1_to_5_once(make, actors, score):
    ticket = make.ticket(F, customer=actors["owner"])
    with pytest.raises(DomainError):
        tickets.rate(ticket, actors["owner"], score)
    tickets.rate(ticket, actors["owner"], 3, "ok")
    with pytest.raises(DomainError):
        tickets.rate(ticket, actors["owner"], 4)
    assert ticket.rating == 3


def test_stale_expected_version_is_a_conflict(make, actors):
    ticket = make.ticket(T, customer=actors["owner"])
    seen = ticket.version_id
    tickets.post_message(ticket, actors["cs"], "Balasan pertama")
    with pytest.raises(ConflictError, match=ticket.number):
        tickets.finish(ticket, actors["master"], expected_version=seen)
    assert ticket.status is R


def test_concurrent_sessions_never_overwrite_each_other(app, db, make, actors):
    """Two staff load the same version; the second write loses with a ConflictError."""
    ticket = make.ticket(T, customer=actors["owner"])
    db.session.commit()
    ticket_id, cs_id = ticket.id, actors["cs"].id

    from sqlalchemy.orm import Session

    from backoffice.models import Ticket, User

    second = Session(db.engine)
    try:
        t2 = second.get(Ticket, ticket_id)
        t2.priority = Priority.URGENT  # staff B has the page open and saves first
        first = db.session.get(Ticket, ticket_id)
        assert first.version_id == t2.version_id
        second.commit()
        with pytest.raises(ConflictError):
            tickets.set_priority(first, Priority.LOW, db.session.get(User, cs_id))
        db.session.rollback()
        assert db.session.get(Ticket, ticket_id).priority is Priority.URGENT
    finally:
        second.close()


def test_sla_due_times_follow_priority_and_config(app, make, actors):
    """Working hours on the ticket's calendar (tests/test_sla.py has the exact instants)."""
    from backoffice.domain import sla

    ticket = make.ticket(P, customer=actors["owner"])
    cal = sla.calendar(ticket)
    assert cal.between(ticket.created_at, ticket.first_response_due) == 8 * 3600
    assert cal.between(ticket.created_at, ticket.resolution_due) == 72 * 3600
    app.config["CAREBOX_SLA_HOURS"] = {"urgent": [2, 6]}
    try:
        tickets.set_priority(ticket, Priority.URGENT, actors["master"])
    finally:
        app.config["CAREBOX_SLA_HOURS"] = {}
    assert cal.between(ticket.created_at, ticket.first_response_due) == 2 * 3600
    assert cal.between(ticket.created_at, ticket.resolution_due) == 6 * 3600


def test_sla_breached_in_python_and_sql_agree(db, make, actors):
    from backoffice.models import Ticket

    old = make.ticket(T, customer=actors["owner"], now=utcnow() - timedelta(days=5))
    fresh = make.ticket(T, customer=actors["owner"])
    now = utcnow()
    assert old.sla_breached(now) and not fresh.sla_breached(now)
    breached = db.session.scalars(select(Ticket.id).where(Ticket.sla_breached(now))).all()
    assert old.id in breached and fresh.id not in breached
    kept = db.session.scalars(select(Ticket.id).where(Ticket.sla_kept(now))).all()
    everyone = db.session.scalars(select(Ticket.id)).all()
    assert set(kept).isdisjoint(breached) and set(kept) | set(breached) == set(everyone)
    assert old.current_due == old.first_response_due  # not answered yet


def test_current_due_in_python_and_sql_agree(db, make, actors):
    """The lists read Ticket.current_due from the database (its SQL side): the same due
    time as the Python side in every status, answered or not (a ticket finished
    unanswered shows its resolution's)."""
    from backoffice.models import Ticket

    made = [make.ticket(s, customer=actors["owner"]) for s in (P, T, R, F)]
    unanswered = make.ticket(T, customer=actors["owner"])
    tickets.finish(unanswered, actors["master"])
    made.append(unanswered)
    db.session.commit()
    db.session.expire_all()  # the stored times (MariaDB keeps whole seconds)
    assert unanswered.first_response_at is None
    due = dict(db.session.execute(select(Ticket.id, Ticket.current_due)).all())
    assert {t.id: t.current_due for t in made} == {t.id: due[t.id] for t in made}
    assert made[0].current_due == made[0].first_response_due
    assert unanswered.current_due == unanswered.resolution_due != unanswered.first_response_due


def test_routing_prefers_the_most_specific_rule(db, make, actors):
    owner = actors["owner"]
    # Seed: question -> CS (kind rule); COD product -> BILLING (product rule).
    q = tickets.file_ticket(owner, TicketKind.QUESTION, "Tanya", "Jam buka?")
    assert (q.status, q.department.code) == (T, "CS")
    routed = _events(db, q)[-1]
    assert routed.action is EventAction.ROUTED and routed.rule_id is not None
    cod_order = make.order(customer=owner, product="SAMEDAY", weight="1")
    c = tickets.file_ticket(owner, TicketKind.QUESTION, "COD", "Ongkir?", order=cod_order)
    assert c.department.code == "OPS"  # product rule beats kind rule
    plain = tickets.file_ticket(owner, TicketKind.CRITICISM, "Kritik", "Lambat")
    assert plain.status is P and plain.department_id is None


def test_inactive_department_rules_are_skipped(db, make, actors):
    make.department("CS").active = False
    q = tickets.file_ticket(actors["owner"], TicketKind.QUESTION, "Tanya", "Jam buka?")
    assert q.status is P


def test_allowed_actions_match_the_desk_roles(make, actors):
    A = tickets.Action
    team = make.ticket(T, customer=actors["owner"], department="OPS")
    assert tickets.allowed_actions(team, actors["dept_own"]) == {A.STAFF_REPLY, A.NOTE}
    assert tickets.allowed_actions(team, actors["dept_other"]) == set()
    assert tickets.allowed_actions(team, actors["cs"]) == {
        A.STAFF_REPLY,
        A.NOTE,
        A.ESCALATE,
        A.PRIORITY,
        A.ASSIGN,
        A.FINISH,
        A.MERGE,  # into another open ticket of its customer (tests/test_merge.py)
        A.LINK_PARCEL,  # by resi (tests/test_ticket_resi.py)
    }
    assert tickets.allowed_actions(team, actors["owner"]) == {A.CUSTOMER_REPLY, A.CLOSE}
    progress = make.ticket(P, customer=actors["owner"])
    assert A.DISPATCH in tickets.allowed_actions(progress, actors["master"])
    assert tickets.allowed_actions(progress, actors["cs"]) == set()


def test_numbers_are_unique_across_many_filings(db, make, actors):
    made = [make.ticket(P, customer=actors["owner"]) for _ in range(30)]
    numbers = {t.number for t in made}
    assert len(numbers) == 30
    count = db.session.scalar(select(func.count(TicketMessage.id)))
    assert count == 30


def test_numbers_stay_unique_when_filed_at_once(app, db, make, actors):
    """Eight workers file tickets at the same moment, each in its own transaction."""
    import threading

    from backoffice.models import Ticket, User

    owner_id = actors["owner"].id
    db.session.commit()
    errors, numbers = [], []
    start = threading.Barrier(8)

    def worker():
        with app.app_context():
            try:
                owner = db.session.get(User, owner_id)
                start.wait()
                for _ in range(5):
                    t = tickets.file_ticket(owner, TicketKind.CRITICISM, "Serentak", "Bersamaan")
                    db.session.commit()
                    numbers.append(t.number)
            except Exception as exc:  # reported below, with the thread's error
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(numbers) == len(set(numbers)) == 40
    stored = db.session.scalars(select(Ticket.number).where(Ticket.customer_id == owner_id))
    assert set(stored) == set(numbers)
