"""Timeline notes the code writes (a merge, an auto-finish) are stored neutral
(domain/event_notes.py) and read in the viewer's language on the desk, whoever wrote
them; a typed note is shown as typed; old free-text rows are shown unchanged."""

from __future__ import annotations

import html
from datetime import datetime

from flask_babel import force_locale
from sqlalchemy import select

from backoffice.domain import autofinish, event_notes, tickets
from backoffice.domain import permissions as perm
from backoffice.domain import tickets as lifecycle
from backoffice.models import EventAction, TicketEvent

from .test_autofinish import FINISH, WARN, _fresh, _waiting
from .test_merge import _desk, _pair
from .test_sla import WEEKDAYS_8_20, _hours, _moves, _question

MERGED_FROM = {
    "id": "{n} digabungkan ke tiket ini (2 pesan)",
    "en": "{n} merged into this ticket (2 messages)",
}
MERGED_INTO = {"id": "digabungkan ke {n}", "en": "merged into {n}"}
AUTO = {
    "id": "tidak ada jawaban dari pelanggan selama 5 hari kerja",
    "en": "no answer from the customer for 5 working days",
}


def _timeline(browser, number: str) -> str:
    page = browser.get(_desk(number), follow_redirects=True).get_data(as_text=True)
    return html.unescape(page.split('id="timeline"', 1)[1].split("</ol>", 1)[0])


def _merged_event(db, duplicate) -> TicketEvent:
    """The duplicate's own MERGED event: it stays on the duplicate."""
    return db.session.scalars(
        select(TicketEvent).where(
            TicketEvent.ticket_id == duplicate.id, TicketEvent.action == EventAction.MERGED
        )
    ).one()


def _staff(login_as):
    return {lang: login_as(perm.CUSTOMER_SERVICE, locale=lang)[0] for lang in ("id", "en")}


def test_a_merge_reads_in_each_viewers_language_whoever_merged(db, login_as, make):
    staff = _staff(login_as)
    for merger, other in (("id", "en"), ("en", "id")):  # both ways
        _customer, first, second, _photo = _pair(make, db)
        resp = staff[merger].post(
            f"{_desk(second.number)}merge",
            {"into": first.number, "expected_version": str(second.version_id)},
            form_url=_desk(second.number),
        )
        assert resp.status_code == 302
        for lang in (merger, other):
            survivor = _timeline(staff[lang], first.number)
            assert MERGED_FROM[lang].format(n=second.number) in survivor
            wrong = "en" if lang == "id" else "id"
            assert MERGED_FROM[wrong].format(n=second.number) not in survivor
    # Stored neutral: no language in the row.
    (row,) = db.session.scalars(
        select(TicketEvent).where(
            TicketEvent.ticket_id == first.id,
            TicketEvent.action == EventAction.MERGED,
            TicketEvent.to_status.is_(None),
        )
    )
    assert event_notes.decode(row.note) == (
        event_notes.MERGED_FROM,
        {"number": second.number, "n": 2},
    )
    # The duplicate's own MERGED event (its desk leads to the survivor) reads the same way.
    dup = _merged_event(db, second)
    for lang in ("id", "en"):
        with force_locale(lang):
            assert event_notes.text(dup.note) == MERGED_INTO[lang].format(n=first.number)


def test_the_auto_finish_note_reads_in_each_viewers_language(db, login_as, make):
    t, _owner, _agent = _waiting(db, make)  # the worker's default language is Indonesian
    autofinish.run(now=WARN)
    assert autofinish.run(now=FINISH).finished == 1
    t = _fresh(db, t)
    staff = _staff(login_as)
    assert AUTO["en"] in _timeline(staff["en"], t.number)
    assert AUTO["en"] not in _timeline(staff["id"], t.number)
    assert AUTO["id"] in _timeline(staff["id"], t.number)
    assert AUTO["id"] not in _timeline(staff["en"], t.number)


def test_a_typed_note_is_never_translated_and_old_rows_show_unchanged(db, login_as, make):
    staff = _staff(login_as)
    _customer, first, second, _photo = _pair(make, db)
    merger = make.user(perm.CUSTOMER_SERVICE, locale="id")
    typed = "sama paketnya, lihat chat"
    lifecycle.merge(second, first, merger, note=typed)
    # A typed note that tries to pass for a machine one loses the marker.
    forged = event_notes.MARK + 'merged_into{"number":"X-1"}'
    lifecycle.finish(first, merger, note=forged)
    db.session.add(  # a row from before the neutral notes: Indonesian free text
        TicketEvent(ticket=first, action=EventAction.NOTE, note="digabungkan ke T-LAMA")
    )
    db.session.commit()
    for lang in ("id", "en"):
        timeline = _timeline(staff[lang], first.number)
        assert f"{MERGED_FROM[lang].format(n=second.number)}: {typed}" in timeline
        with force_locale(lang):
            shown = event_notes.text(_merged_event(db, second).note)
        assert shown == f"{MERGED_INTO[lang].format(n=first.number)}: {typed}"
        assert 'merged_into{"number":"X-1"}' in timeline  # as typed, minus the marker
        assert "digabungkan ke T-LAMA" in timeline  # old rows unchanged, in both languages
        assert event_notes.MARK not in timeline


def test_a_moved_due_time_reads_in_each_viewers_language(db, login_as, make):
    """The escalation's DUE_MOVED note (clock, times, zone, why) is written without a
    viewer; the desk shows it in Indonesian and in English."""
    _hours(db, make, "CS", WEEKDAYS_8_20)
    claims = _hours(
        db, make, "CLAIMS", [(d, 8 * 60, 16 * 60) for d in range(5)], zone="Asia/Jayapura"
    )
    t = _question(make.user(perm.CUSTOMER), datetime(2026, 11, 30, 1, 0))  # Mon 08:00 WIB
    tickets.dispatch(t, claims, make.user(perm.MASTER_ADMIN), now=datetime(2026, 11, 30, 5, 0))
    db.session.commit()
    (moved,) = _moves(db, t)
    assert event_notes.decode(moved.note)[0] == event_notes.DUE_MOVED
    browsers = {lang: login_as(perm.MASTER_ADMIN, locale=lang)[0] for lang in ("id", "en")}
    shown = {
        "id": "batas respons pertama 30-11-2026 18:00 → 01-12-2026 10:00 WIT (CLAIMS): "
        "kini di CLAIMS, dengan jam kerjanya",
        "en": "first response due 30-11-2026 18:00 → 01-12-2026 10:00 WIT (CLAIMS): "
        "now with CLAIMS, on its working hours",
    }
    for lang, other in (("id", "en"), ("en", "id")):
        timeline = _timeline(browsers[lang], t.number)
        assert shown[lang] in timeline and shown[other] not in timeline
