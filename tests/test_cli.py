"""The carebox CLI: seed, staff, faq import and seed-bulk, including their bad input."""

from __future__ import annotations

import textwrap

import pytest
from sqlalchemy import func, select

from backoffice.cli import faq_group, seed_bulk_command, seed_command, staff_group
from backoffice.domain import permissions as perm
from backoffice.extensions import db as _db
from backoffice.models import (
    Department,
    FaqEntry,
    Order,
    Product,
    RoutingRule,
    Ticket,
    TicketEvent,
    TicketMessage,
    User,
)

COUNTED = (Department, RoutingRule, Product, FaqEntry, User, Ticket, TicketMessage, Order)


def _counts():
    return {m.__name__: _db.session.scalar(select(func.count()).select_from(m)) for m in COUNTED}


def test_seed_is_idempotent(runner, db):
    first = runner.invoke(seed_command)
    assert first.exit_code == 0, first.output
    after_first = _counts()
    second = runner.invoke(seed_command)
    assert second.exit_code == 0
    assert "0 inserted" in second.output and "0 updated" in second.output
    assert _counts() == after_first
    assert after_first["FaqEntry"] >= 30 and after_first["Department"] >= 5


def test_seed_demo_prints_logins_and_is_idempotent(runner, db):
    result = runner.invoke(seed_command, ["--demo"])
    assert result.exit_code == 0, result.output
    assert "master@carebox.example" in result.output and "customer-demo-2026" in result.output
    once = _counts()
    assert once["Ticket"] == 4
    again = runner.invoke(seed_command, ["--demo"])
    assert again.exit_code == 0
    assert _counts() == once


def test_staff_create_department_admin(runner, db):
    result = runner.invoke(
        staff_group,
        [
            "create",
            "ops2@example.com",
            "--role",
            perm.ADMIN_DEPARTMENT,
            "--department",
            "ops",
            "--password",
            "a-long-password",
        ],
    )
    assert result.exit_code == 0, result.output
    user = _db.session.scalar(select(User).where(User.email == "ops2@example.com"))
    assert user.department.code == "OPS"
    assert user.has_permission(perm.TICKETS_DEPARTMENT)
    assert not user.has_permission(perm.PORTAL)


def test_staff_create_prompts_for_the_password(runner, db):
    result = runner.invoke(
        staff_group,
        ["create", "cs9@example.com", "--role", perm.CUSTOMER_SERVICE],
        input="a-long-password\na-long-password\n",
    )
    assert result.exit_code == 0, result.output
    assert _db.session.scalar(select(User.id).where(User.email == "cs9@example.com"))


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["x@example.com", "--role", "superuser", "--password", "a-long-password"],
            "Invalid value for '--role'",
        ),
        (
            [
                "x@example.com",
                "--role",
                "admin_department",
                "--department",
                "NOPE",
                "--password",
                "a-long-password",
            ],
            "Unknown department 'NOPE'",
        ),
        (
            ["x@example.com", "--role", "admin_department", "--password", "a-long-password"],
            "needs --department",
        ),
        (
            ["not-an-email", "--role", "customer_service", "--password", "a-long-password"],
            "not a valid email",
        ),
        (
            ["x@example.com", "--role", "customer_service", "--password", "short"],
            "Password refused",
        ),
    ],
)
def test_staff_create_refuses_bad_input(runner, db, args, message):
    before = _counts()["User"]
    result = runner.invoke(staff_group, ["create", *args])
    assert result.exit_code != 0
    assert message in result.output
    assert _counts()["User"] == before


def test_staff_create_refuses_a_duplicate(runner, db, make):
    make.user(perm.CUSTOMER_SERVICE, email="dup@example.com")
    _db.session.commit()
    result = runner.invoke(
        staff_group,
        [
            "create",
            "dup@example.com",
            "--role",
            perm.CUSTOMER_SERVICE,
            "--password",
            "a-long-password",
        ],
    )
    assert result.exit_code != 0 and "already exists" in result.output


CSV_GOOD = textwrap.dedent("""\
    key,category,question_id,answer_id,question_en,answer_en,published,position
    new-one,shipping,Apa itu resi?,Nomor pelacakan paket.,What is a waybill?,A tracking number.,ya,5
    tracking-number,shipping,Bagaimana melacak?,Pakai nomor resi di portal.,,,true,1
    """)


def test_faq_import_csv_counts_and_upserts(runner, db, tmp_path):
    path = tmp_path / "faq.csv"
    path.write_text(CSV_GOOD, encoding="utf-8-sig")  # spreadsheets add a BOM
    result = runner.invoke(faq_group, ["import", str(path)])
    assert result.exit_code == 0, result.output
    assert "inserted 1, updated 1, unchanged 0" in result.output
    again = runner.invoke(faq_group, ["import", str(path)])
    assert "inserted 0, updated 0, unchanged 2" in again.output
    entry = _db.session.scalar(select(FaqEntry).where(FaqEntry.key == "tracking-number"))
    assert entry.answer_id == "Pakai nomor resi di portal." and entry.position == 1


def test_faq_import_semicolon_csv_from_a_spreadsheet(runner, db, tmp_path):
    path = tmp_path / "faq.csv"
    path.write_text(
        CSV_GOOD.replace(",", ";").replace("Nomor pelacakan paket.", "Nomor, unik."),
        encoding="utf-8",
    )
    result = runner.invoke(faq_group, ["import", str(path)])
    assert result.exit_code == 0, result.output
    entry = _db.session.scalar(select(FaqEntry).where(FaqEntry.key == "new-one"))
    assert entry.answer_id == "Nomor, unik."


def test_faq_import_bad_rows_report_lines_and_write_nothing(runner, db, tmp_path):
    path = tmp_path / "faq.csv"
    path.write_text(
        CSV_GOOD
        + "bad key!,shipping,Q,A,,,true,1\n"
        + "another,nowhere,Q,A,,,true,1\n"
        + "third,shipping,,A,,,maybe,x\n",
        encoding="utf-8",
    )
    before = _counts()["FaqEntry"]
    result = runner.invoke(faq_group, ["import", str(path)])
    assert result.exit_code != 0
    assert ":4: `key` 'bad key!'" in result.output
    assert ":5: unknown category 'nowhere'" in result.output
    assert ":6: `question_id` is empty" in result.output
    assert ":6: `published` must be true or false" in result.output
    assert ":6: `position` must be a whole number" in result.output
    assert "nothing was imported" in result.output
    assert _counts()["FaqEntry"] == before
    assert not _db.session.scalar(select(FaqEntry.id).where(FaqEntry.key == "new-one"))


def test_faq_import_yaml_with_categories_and_line_numbers(runner, db, tmp_path):
    good = tmp_path / "faq.yaml"
    good.write_text(
        textwrap.dedent("""\
        categories:
          - {code: promos, name_id: Promo, name_en: Promotions, position: 90}
        entries:
          - key: promo-1
            category: promos
            question_id: Ada promo?
            answer_id: Ada, setiap bulan.
            published: false
        """),
        encoding="utf-8",
    )
    assert runner.invoke(faq_group, ["import", str(good)]).exit_code == 0
    entry = _db.session.scalar(select(FaqEntry).where(FaqEntry.key == "promo-1"))
    assert entry.category.name_en == "Promotions" and entry.published is False

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "entries:\n  - key: ok-1\n    category: promos\n    question_id: Q\n"
        "    answer_id: A\n  - key: Bad Key\n    category: promos\n",
        encoding="utf-8",
    )
    result = runner.invoke(faq_group, ["import", str(bad)])
    assert result.exit_code != 0 and ":6: `key` 'Bad Key'" in result.output
    assert not _db.session.scalar(select(FaqEntry.id).where(FaqEntry.key == "ok-1"))


def test_faq_import_rejects_other_files(runner, db, tmp_path):
    path = tmp_path / "faq.txt"
    path.write_text("hello", encoding="utf-8")
    result = runner.invoke(faq_group, ["import", str(path)])
    assert result.exit_code != 0 and ".csv, .yaml or .yml" in result.output


def test_seed_bulk_inserts_consistent_rows(runner, db):
    result = runner.invoke(seed_bulk_command, ["--tickets", "200", "--batch", "100"])
    assert result.exit_code == 0, result.output
    assert "200 tickets" in result.output and "600 messages" in result.output
    counts = _counts()
    assert counts["Ticket"] == 200 and counts["Order"] == 100
    numbers = _db.session.scalars(select(Ticket.number)).all()
    assert len(set(numbers)) == 200
    assert _db.session.scalar(select(func.count()).select_from(TicketEvent)) >= 200


def test_seed_bulk_refuses_bad_counts(runner, db):
    result = runner.invoke(seed_bulk_command, ["--tickets", "0"])
    assert result.exit_code != 0 and "--tickets" in result.output
