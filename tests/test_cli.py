"""The carebox CLI: seed, staff, faq and products import, seed-bulk, with their bad input."""

from __future__ import annotations

import textwrap
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from backoffice.cli import (
    faq_group,
    products_group,
    seed_bulk_command,
    seed_command,
    staff_group,
)
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
    assert "inserted 0, updated 0, unchanged 0, kept 39" in second.output
    assert _counts() == after_first
    assert after_first["FaqEntry"] >= 30 and after_first["Department"] >= 5


def test_seed_keeps_what_the_back_office_changed(runner, db):
    """Ops rerun `carebox seed` on every deploy: it must not undo the master admin's edits."""
    assert runner.invoke(seed_command).exit_code == 0
    reg = _db.session.scalar(select(Product).where(Product.code == "REG"))
    reg.base_price, reg.active = Decimal("12500.00"), False
    faq = _db.session.scalars(select(FaqEntry).order_by(FaqEntry.id)).first()
    faq.answer_id = "Jawaban yang disunting."
    dep = _db.session.scalars(select(Department).order_by(Department.id)).first()
    dep.name_en = "Renamed"
    _db.session.delete(_db.session.scalars(select(Product).where(Product.code == "CARGO")).one())
    _db.session.commit()
    assert runner.invoke(seed_command).exit_code == 0
    _db.session.expire_all()
    assert (reg.base_price, reg.active) == (Decimal("12500.00"), False)
    assert faq.answer_id == "Jawaban yang disunting." and dep.name_en == "Renamed"
    # What is missing comes back.
    assert _db.session.scalar(select(Product.id).where(Product.code == "CARGO"))


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


PRODUCTS_CSV = textwrap.dedent("""\
    code;kind;name_id;name_en;base_price;price_per_kg;min_weight_kg;max_weight_kg;eta_days;badge;badge_note_id;active
    REG;service;Reguler;Regular;9500;8500;1;30;2-3;improved;Kini lebih cepat;ya
    JUMBO;service;Jumbo Kargo;;150000;4500,5;10;500;5-7;new;Baru!;
    """)


def test_products_import_upserts_a_spreadsheets_rows(runner, db, tmp_path):
    assert runner.invoke(seed_command).exit_code == 0
    path = tmp_path / "tarif.csv"
    path.write_text(PRODUCTS_CSV, encoding="utf-8-sig")
    result = runner.invoke(products_group, ["import", str(path)])
    assert result.exit_code == 0, result.output
    assert "inserted 1, updated 1, unchanged 0" in result.output
    reg, jumbo = (
        _db.session.scalar(select(Product).where(Product.code == code)) for code in ("REG", "JUMBO")
    )
    assert (reg.base_price, reg.price_per_kg, reg.badge.value) == (9500, 8500, "improved")
    assert reg.description_id.startswith("Layanan")  # a column the file leaves out is kept
    assert (jumbo.name_en, jumbo.price_per_kg, jumbo.max_weight_kg) == (
        "Jumbo Kargo",
        Decimal("4500.50"),
        Decimal("500.00"),
    )
    assert jumbo.active and jumbo.kind.value == "service"
    again = runner.invoke(products_group, ["import", str(path)])
    assert "inserted 0, updated 0, unchanged 2" in again.output


def test_products_import_bad_rows_report_lines_and_write_nothing(runner, db, tmp_path):
    assert runner.invoke(seed_command).exit_code == 0
    path = tmp_path / "tarif.csv"
    path.write_text(
        PRODUCTS_CSV
        + "reg-2;parcel;Dua;;-1;1.005;5;2;;shiny;;maybe\n"
        + "X;service;;;;;;;;;;\n"
        + "JUMBO;service;Lagi;;1;1;1;2;;none;;\n"
        + "BIG;service;Mahal;;1e30;1.000.000;1;2;;none;;\n",
        encoding="utf-8",
    )
    before = _counts()["Product"]
    result = runner.invoke(products_group, ["import", str(path)])
    assert result.exit_code != 0
    out = result.output
    assert ":4: `code` 'REG-2' must be 2-20 capital letters, digits or _" in out
    assert ":5: `code` 'X'" in out
    assert ":6: code 'JUMBO' repeats line 3" in out
    assert ":7: `base_price` must be at least 0 and below 10000000000, not 1e30" in out
    assert ":7: `price_per_kg` must be a number, not '1.000.000'" in out
    assert "nothing was imported" in out
    assert _counts()["Product"] == before
    reg = _db.session.scalar(select(Product).where(Product.code == "REG"))
    assert reg.base_price == Decimal("9000.00")  # the good row was not written either

    path.write_text(PRODUCTS_CSV.splitlines()[0] + "\nBAD;parcel;Dua;;-1;1.005;5;2;;shiny;;maybe\n")
    out = runner.invoke(products_group, ["import", str(path)]).output
    for message in (
        "`kind` must be one of service, product, not 'parcel'",
        "`base_price` must be at least 0",
        "`price_per_kg` has more than two decimals: 1.005",
        "`max_weight_kg` is below `min_weight_kg`",
        "`badge` must be one of none, new, improved, not 'shiny'",
        "`active` must be true or false, not 'maybe'",
    ):
        assert f":2: {message}" in out, (message, out)


def test_products_import_reads_the_seed_shape(runner, db, tmp_path):
    path = tmp_path / "products.yaml"
    path.write_text(
        "- code: PICKUP\n  kind: product\n  name_id: Jemput\n  base_price: 5000\n"
        "  min_weight_kg: 0\n  max_weight_kg: 0\n",
        encoding="utf-8",
    )
    result = runner.invoke(products_group, ["import", str(path)])
    assert result.exit_code == 0, result.output
    pickup = _db.session.scalar(select(Product).where(Product.code == "PICKUP"))
    assert (pickup.kind.value, pickup.base_price, pickup.max_weight_kg) == ("product", 5000, 0)


def test_seed_bulk_inserts_consistent_rows(runner, db):
    result = runner.invoke(seed_bulk_command, ["--tickets", "200", "--batch", "100"])
    assert result.exit_code == 0, result.output
    assert "200 tickets" in result.output and "600 messages" in result.output
    counts = _counts()
    # One shipment per ticket by default (docs/architecture.md §3: 1M of each).
    assert counts["Ticket"] == 200 and counts["Order"] == 200
    numbers = _db.session.scalars(select(Ticket.number)).all()
    assert len(set(numbers)) == 200
    assert _db.session.scalar(select(func.count()).select_from(TicketEvent)) >= 200


def test_seed_bulk_refuses_bad_counts(runner, db):
    result = runner.invoke(seed_bulk_command, ["--tickets", "0"])
    assert result.exit_code != 0 and "--tickets" in result.output
