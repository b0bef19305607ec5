"""The calendar arithmetic of domain/worktime.py against hard cases worked out by hand.

Every instant is naive UTC, as stored; the comments give the local time. WIB is UTC+7,
WITA UTC+8, WIT UTC+9, all year round.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest

from backoffice.domain.worktime import Calendar, parse_clock, public_holidays, week_from_rows

H = 3600
WEEKDAYS_8_20 = week_from_rows((d, 8 * 60, 20 * 60) for d in range(5))  # Mon–Fri 08–20
SPLIT = week_from_rows(
    [(d, 8 * 60, 12 * 60) for d in range(6)] + [(d, 13 * 60, 20 * 60) for d in range(6)]
)
OFFICE_8_17 = week_from_rows((d, 8 * 60, 17 * 60) for d in range(5))


CASES = [
    # (label, calendar, start UTC, working seconds, expected UTC)
    (
        "19:59 Friday WIB + 1 h: one minute on Friday, 59 on Monday → Mon 08:59 WIB",
        Calendar("Asia/Jakarta", WEEKDAYS_8_20),
        datetime(2026, 11, 27, 12, 59),
        1 * H,
        datetime(2026, 11, 30, 1, 59),
    ),
    (
        "19:59 Friday WIB + 8 h → Mon 15:59 WIB",
        Calendar("Asia/Jakarta", WEEKDAYS_8_20),
        datetime(2026, 11, 27, 12, 59),
        8 * H,
        datetime(2026, 11, 30, 8, 59),
    ),
    (
        "19:00 Friday + 1 h ends with the shift: Fri 20:00 WIB, not Monday",
        Calendar("Asia/Jakarta", WEEKDAYS_8_20),
        datetime(2026, 11, 27, 12, 0),
        1 * H,
        datetime(2026, 11, 27, 13, 0),
    ),
    (
        "Lebaran 2026: Tue 17 Mar 19:00 WIB + 4 h; 18 cuti Nyepi, 19 Nyepi, 20 cuti "
        "Idul Fitri, 21–22 weekend and Idul Fitri, 23–24 cuti bersama → Wed 25 Mar 11:00 WIB",
        Calendar("Asia/Jakarta", WEEKDAYS_8_20),
        datetime(2026, 3, 17, 12, 0),
        4 * H,
        datetime(2026, 3, 25, 4, 0),
    ),
    (
        "split shift: Mon 11:00 WIB + 2 h = 11–12, then 13–14 → 14:00 WIB",
        Calendar("Asia/Jakarta", SPLIT),
        datetime(2026, 11, 30, 4, 0),
        2 * H,
        datetime(2026, 11, 30, 7, 0),
    ),
    (
        "split shift: filed at 12:30 over lunch + 1 h → 14:00 WIB",
        Calendar("Asia/Jakarta", SPLIT),
        datetime(2026, 11, 30, 5, 30),
        1 * H,
        datetime(2026, 11, 30, 7, 0),
    ),
    (
        "split shift: Sat 19:30 WIB + 1 h; Sunday has no hours → Mon 08:30 WIB",
        Calendar("Asia/Jakarta", SPLIT),
        datetime(2026, 11, 28, 12, 30),
        1 * H,
        datetime(2026, 11, 30, 1, 30),
    ),
    (
        "WIT: Tue 1 Dec 16:30 WIT (07:30 UTC) + 2 h, office 08–17 → Wed 09:30 WIT",
        Calendar("Asia/Jayapura", OFFICE_8_17),
        datetime(2026, 12, 1, 7, 30),
        2 * H,
        datetime(2026, 12, 2, 0, 30),
    ),
    (
        "the same instant on a WIB office is 14:30 WIB: + 2 h → 16:30 WIB the same day",
        Calendar("Asia/Jakarta", OFFICE_8_17),
        datetime(2026, 12, 1, 7, 30),
        2 * H,
        datetime(2026, 12, 1, 9, 30),
    ),
    (
        "WITA: Mon 30 Nov 07:00 WITA (23:00 UTC Sun) is before opening: + 1 h → 09:00 WITA",
        Calendar("Asia/Makassar", OFFICE_8_17),
        datetime(2026, 11, 29, 23, 0),
        1 * H,
        datetime(2026, 11, 30, 1, 0),
    ),
    (
        "no DST: a July start keeps UTC+7 — Fri 3 Jul 2026 19:00 WIB + 2 h → Mon 6 Jul 09:00",
        Calendar("Asia/Jakarta", WEEKDAYS_8_20),
        datetime(2026, 7, 3, 12, 0),
        2 * H,
        datetime(2026, 7, 6, 2, 0),
    ),
    (
        "a company day off (Wed 2 Dec): Tue 19:00 WIB + 8 h → Thu 15:00 WIB",
        Calendar("Asia/Jakarta", WEEKDAYS_8_20, closed={date(2026, 12, 2): "Ulang tahun"}),
        datetime(2026, 12, 1, 12, 0),
        8 * H,
        datetime(2026, 12, 3, 8, 0),
    ),
    (
        "Christmas 2026 worked by the company: Wed 23 Dec 19:00 + 2 h; 24 is cuti bersama, "
        "25 is opened → Fri 25 Dec 09:00 WIB",
        Calendar("Asia/Jakarta", WEEKDAYS_8_20, opened=frozenset({date(2026, 12, 25)})),
        datetime(2026, 12, 23, 12, 0),
        2 * H,
        datetime(2026, 12, 25, 2, 0),
    ),
    (
        "the same without the opened day → Mon 28 Dec 09:00 WIB",
        Calendar("Asia/Jakarta", WEEKDAYS_8_20),
        datetime(2026, 12, 23, 12, 0),
        2 * H,
        datetime(2026, 12, 28, 2, 0),
    ),
    (
        "24/7 observing holidays: 16 Aug 2026 20:00 WIB + 6 h; 17 Aug is Independence Day "
        "→ 18 Aug 02:00 WIB",
        Calendar("Asia/Jakarta"),
        datetime(2026, 8, 16, 13, 0),
        6 * H,
        datetime(2026, 8, 17, 19, 0),
    ),
    (
        "24/7 on call, holidays ignored: the same + 6 h → 17 Aug 02:00 WIB",
        Calendar("Asia/Jakarta", observes_holidays=False),
        datetime(2026, 8, 16, 13, 0),
        6 * H,
        datetime(2026, 8, 16, 19, 0),
    ),
]


@pytest.mark.parametrize(
    ("calendar", "start", "seconds", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0][:60] for c in CASES],
)
def test_add_working_time(calendar, start, seconds, expected):
    assert calendar.add(start, seconds) == expected
    # and back: exactly that much working time lies between them
    assert calendar.between(start, expected) == seconds


def test_lebaran_2026_comes_from_the_holidays_package_with_cuti_bersama():
    days = public_holidays(2026)
    assert "Idul Fitri" in days[date(2026, 3, 21)]
    for d in (18, 20, 23, 24):
        assert "Cuti Bersama" in days[date(2026, 3, d)], d
    cal = Calendar("Asia/Jakarta", WEEKDAYS_8_20)
    moved = cal.days_off(datetime(2026, 3, 17, 12, 0), datetime(2026, 3, 25, 4, 0))
    assert [d.day for d, _ in moved] == [18, 19, 20, 23, 24]  # 21–22 is a weekend anyway


def test_between_skips_nights_weekends_and_lunch():
    cal = Calendar("Asia/Jakarta", SPLIT)
    # Sat 19:00 WIB → Mon 09:00 WIB: one hour on Saturday, one on Monday
    assert cal.between(datetime(2026, 11, 28, 12, 0), datetime(2026, 11, 30, 2, 0)) == 2 * H
    # 11:00 → 14:00 over lunch: two hours; reversed, minus two
    a, b = datetime(2026, 11, 30, 4, 0), datetime(2026, 11, 30, 7, 0)
    assert cal.between(a, b) == 2 * H and cal.between(b, a) == -2 * H
    assert cal.add(a, 0) == a


def test_a_week_without_hours_runs_on_the_wall_clock_rather_than_never():
    cal = Calendar("Asia/Jakarta", week_from_rows([]))
    start = datetime(2026, 8, 16, 12, 0)  # across Independence Day: not skipped
    assert cal.add(start, 30 * H) == datetime(2026, 8, 17, 18, 0)


@pytest.mark.parametrize(
    ("text", "minutes"), [("08:00", 480), ("8:30", 510), ("24:00", 1440), ("00:00", 0)]
)
def test_parse_clock(text, minutes):
    assert parse_clock(text) == minutes


@pytest.mark.parametrize("text", ["", "8", "24:01", "12:60", "ab:cd", "-1:00", "12:5", None])
def test_parse_clock_refuses(text):
    with pytest.raises(ValueError):
        parse_clock(text)


# --- the calendars stored in the database ---------------------------------------


def test_seeded_departments_have_realistic_hours_in_their_zones(db, make):
    from backoffice.domain import worktime
    from backoffice.seed import _seed_hours, seed_departments

    _seed_hours(seed_departments(), force=True)  # the suite seeds no hours (TestingConfig)

    cals = worktime.load_many(
        [make.department(c).id for c in ("CS", "OPS", "CLAIMS", "DIGITAL")] + [None]
    )
    ops = cals[make.department("OPS").id]
    assert ops.zone == "Asia/Jakarta" and ops.week[0] == ((480, 720), (780, 1200))  # split
    assert ops.week[6] == ()  # no Sunday shift
    claims = cals[make.department("CLAIMS").id]
    assert claims.zone == "Asia/Makassar" and claims.abbr == "WITA"
    digital = cals[make.department("DIGITAL").id]
    assert all(day == ((0, 1440),) for day in digital.week) and not digital.observes_holidays
    # a ticket without a department runs on Customer Service's calendar
    assert cals[None].name == "CS" and cals[None].week == cals[make.department("CS").id].week


def test_company_days_close_and_open_days_for_every_department(db, make):
    from backoffice.domain import worktime
    from backoffice.models import CompanyDay
    from backoffice.seed import _seed_hours, seed_departments

    _seed_hours(seed_departments(), force=True)
    db.session.add_all(
        [
            CompanyDay(day=date(2026, 12, 2), closed=True, name="Ulang tahun carebox"),
            CompanyDay(day=date(2026, 12, 25), closed=False, name="Buka saat Natal"),
        ]
    )
    db.session.flush()
    ops = worktime.load(make.department("OPS"))
    assert ops.day_off(date(2026, 12, 2)) == "Ulang tahun carebox"
    assert ops.day_off(date(2026, 12, 25)) is None  # Christmas, worked
    assert "Cuti Bersama" in ops.day_off(date(2026, 12, 24))
    assert worktime.load(make.department("DIGITAL")).day_off(date(2026, 12, 2)) is None


def test_seeding_twice_keeps_edited_hours(db, make):
    from sqlalchemy import func, select

    from backoffice.models import BusinessHours
    from backoffice.seed import _seed_hours, seed_departments

    _seed_hours(seed_departments(), force=True)

    ops = make.department("OPS")
    db.session.execute(
        BusinessHours.__table__.delete().where(BusinessHours.department_id == ops.id)
    )
    db.session.add(BusinessHours(department=ops, weekday=0, start_minute=600, end_minute=660))
    count = db.session.scalar(select(func.count(BusinessHours.id)))
    _seed_hours(seed_departments(), force=True)
    assert db.session.scalar(select(func.count(BusinessHours.id))) == count
