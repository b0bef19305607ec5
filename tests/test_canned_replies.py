"""Canned replies (issue 13 item 3) through HTTP with CSRF on: who manages which,
who may insert which, placeholders filled from the ticket (missing ones left visible
and highlighted), both languages, usage counted, the seeded courier set."""

from __future__ import annotations

from sqlalchemy import select

from backoffice.domain import canned, shipments
from backoffice.domain import permissions as perm
from backoffice.models import CannedReply, TrackingEventKind
from backoffice.seed import seed_canned_replies

from .admin_support import flashes
from .test_admin_desk import desk

URL = "/admin/canned-replies/"


def _reply(db, **fields) -> CannedReply:
    fields.setdefault("title", "Judul")
    fields.setdefault("body_id", "Halo {nama_pelanggan}, tiket {nomor_tiket}.")
    r = CannedReply(**fields)
    db.session.add(r)
    db.session.commit()
    return r


def _create(b, **data):
    data.setdefault("title", "Salam")
    data.setdefault("body_id", "Halo {nama_pelanggan}")
    data.setdefault("active", "y")
    return b.post(f"{URL}new/", data, form_url=f"{URL}new/")


def test_the_seeded_courier_set_is_shared_and_idempotent(db):
    shortcuts = set(
        db.session.scalars(
            select(CannedReply.shortcut).where(CannedReply.owner_id.is_(None), CannedReply.seeded)
        )
    )
    assert {"terlambat", "rusak", "alamat", "refund-cod", "terima-kasih"} <= shortcuts
    assert seed_canned_replies() == 0  # a second run adds nothing
    late = db.session.scalar(select(CannedReply).where(CannedReply.shortcut == "terlambat"))
    assert "{resi}" in late.body_id and "{status_kiriman}" in late.body_id and late.body_en


def test_everyone_manages_their_own_and_only_master_the_shared(login_as, make, db):
    shared = db.session.scalar(select(CannedReply).where(CannedReply.shortcut == "rusak"))
    cs, me = login_as(perm.CUSTOMER_SERVICE, locale="en")
    other = make.user(perm.CUSTOMER_SERVICE)
    theirs = _reply(db, shortcut="punya-dia", owner_id=other.id)
    # CS creates a personal one; a forged "visibility" makes it no less personal.
    assert _create(cs, shortcut="sapaan", visibility="everyone").status_code == 302
    mine = db.session.scalar(select(CannedReply).where(CannedReply.shortcut == "sapaan"))
    assert mine.owner_id == me.id and mine.department_id is None
    html = cs.get(URL).get_data(as_text=True)
    assert "sapaan" in html and "rusak" not in html and "punya-dia" not in html
    assert 'name="visibility"' not in cs.get(f"{URL}new/").get_data(as_text=True)
    # Shared and other people's replies are out of reach: 404 to edit, delete does nothing.
    for r in (shared, theirs):
        assert cs.get(f"{URL}edit/?id={r.id}").status_code == 404
        cs.post(f"{URL}delete/", {"id": str(r.id)}, form_url=URL)
        assert db.session.get(CannedReply, r.id) is not None
    # The master admin manages shared ones (and may make one for a department).
    master, boss = login_as(perm.MASTER_ADMIN, locale="en")
    assert "rusak" in master.get(URL).get_data(as_text=True)
    assert "sapaan" not in master.get(URL).get_data(as_text=True)  # personal stays personal
    claims = make.department("CLAIMS")
    assert _create(master, shortcut="klaim", visibility=str(claims.id)).status_code == 302
    klaim = db.session.scalar(select(CannedReply).where(CannedReply.shortcut == "klaim"))
    assert klaim.owner_id is None and klaim.department_id == claims.id
    assert master.get(f"{URL}edit/?id={shared.id}").status_code == 200
    # A department admin sees only their own too; a customer never gets in.
    dept, _ = login_as(perm.ADMIN_DEPARTMENT, department="OPS")
    assert "rusak" not in dept.get(URL).get_data(as_text=True)
    customer, _ = login_as(perm.CUSTOMER)
    assert customer.get(URL).status_code == 403
    assert customer.client.application.test_client().get(URL).status_code == 302  # anonymous


def test_bad_input_is_refused_with_a_message(login_as, db):
    cs, me = login_as(perm.CUSTOMER_SERVICE, locale="en")
    resp = _create(cs, shortcut="Not A Shortcut!")
    assert resp.status_code == 200 and "1-40 of a-z" in resp.get_data(as_text=True)
    assert _create(cs, shortcut="dua").status_code == 302
    resp = _create(cs, shortcut="dua")  # the same shortcut twice for one person
    assert "already uses /dua" in resp.get_data(as_text=True)
    assert (
        len(db.session.scalars(select(CannedReply).where(CannedReply.shortcut == "dua")).all()) == 1
    )
    # No CSRF token: nothing created.
    cs.client.post(f"{URL}new/", data={"shortcut": "tanpa", "title": "x", "body_id": "x"})
    assert db.session.scalar(select(CannedReply).where(CannedReply.shortcut == "tanpa")) is None


def test_who_may_insert_which(login_as, make, db):
    ops_only = _reply(db, shortcut="ops-saja", department_id=make.department("OPS").id)
    cs_user = make.user(perm.CUSTOMER_SERVICE)
    personal = _reply(db, shortcut="pribadi", owner_id=cs_user.id)
    off = _reply(db, shortcut="mati", active=False)
    db.session.commit()
    t = make.ticket("team", department="OPS")
    db.session.commit()
    ops, _ = login_as(perm.ADMIN_DEPARTMENT, department="OPS")
    claims, _ = login_as(perm.ADMIN_DEPARTMENT, department="CLAIMS")
    ops_list = {r["shortcut"] for r in ops.get(f"{desk(t.number)}canned").get_json()}
    assert "ops-saja" in ops_list and "rusak" in ops_list
    assert "pribadi" not in ops_list and "mati" not in ops_list
    # CLAIMS cannot open the ticket at all, nor read an OPS text through it.
    assert claims.get(f"{desk(t.number)}canned/{ops_only.id}").status_code == 404
    assert {r.shortcut for r in canned.usable_replies(cs_user)} >= {"pribadi", "rusak"}
    assert "ops-saja" not in {r.shortcut for r in canned.usable_replies(cs_user)}
    for r in (personal, off):
        assert ops.get(f"{desk(t.number)}canned/{r.id}").status_code == 404
    assert ops.get(f"{desk(t.number)}canned/abc").status_code == 404


def test_placeholders_are_filled_and_missing_ones_stay_visible(login_as, make, db):
    customer = make.user(name="Rina <Putri>")
    order = make.order(customer=customer)
    with_order = make.ticket("team", customer=customer, order=order)
    without = make.ticket("team")
    db.session.commit()
    b, me = login_as(perm.CUSTOMER_SERVICE, name="Sari", locale="en")
    late = db.session.scalar(select(CannedReply).where(CannedReply.shortcut == "terlambat"))
    # Without an order: {resi} and {status_kiriman} have no value.
    data = b.get(f"{desk(without.number)}canned/{late.id}").get_json()
    assert without.number in data["text"] and "Sari" in data["text"]
    assert "{resi}" in data["text"] and "{status_kiriman}" in data["text"]
    assert data["missing"] == ["{resi}", "{status_kiriman}"]
    # With an order and a tracking event, everything is filled.
    shipments.add_event(order, TrackingEventKind.AT_HUB, make._master(), location="Bandung")
    db.session.commit()
    data = b.get(f"{desk(with_order.number)}canned/{late.id}").get_json()
    assert data["missing"] == [] and order.resi in data["text"] and "Bandung" in data["text"]
    assert "Rina <Putri>" in data["text"]  # JSON carries text; the page escapes it
    # The picker without JavaScript: the desk opens with the text in the box, escaped,
    # and the missing placeholders highlighted.
    html = b.get(f"{desk(without.number)}?canned={late.id}").get_data(as_text=True)
    box = html.split('id="body"', 1)[1].split("</textarea>", 1)[0]
    assert "{resi}" in box and without.customer.name in box
    notice = html.split('id="canned-missing"', 1)[1].split("</div>", 1)[0]
    assert '<mark class="placeholder-missing">{resi}</mark>' in notice and "hidden" not in notice
    html = b.get(f"{desk(with_order.number)}?canned={late.id}").get_data(as_text=True)
    assert "Rina &lt;Putri&gt;" in html and "Rina <Putri>" not in html
    # An id that is not theirs: a message, an empty box.
    html = b.get(f"{desk(without.number)}?canned=999999").get_data(as_text=True)
    assert "not available to you" in flashes(html)


def test_the_text_follows_the_customers_language(login_as, make, db):
    english = make.user(locale="en")
    t = make.ticket("team", customer=english)
    indo = make.ticket("team")
    db.session.commit()
    b, _ = login_as(perm.CUSTOMER_SERVICE)
    late = db.session.scalar(select(CannedReply).where(CannedReply.shortcut == "terlambat"))
    assert "We are sorry" in b.get(f"{desk(t.number)}canned/{late.id}").get_json()["text"]
    assert "Mohon maaf" in b.get(f"{desk(indo.number)}canned/{late.id}").get_json()["text"]


def test_usage_is_counted_when_the_reply_is_sent(login_as, make, db):
    t = make.ticket("team")
    db.session.commit()
    b, me = login_as(perm.CUSTOMER_SERVICE)
    thanks = db.session.scalar(select(CannedReply).where(CannedReply.shortcut == "terima-kasih"))
    before = thanks.usage_count
    page = b.get(f"{desk(t.number)}?canned={thanks.id}").get_data(as_text=True)
    assert (
        f'value="{thanks.id}"'
        in page.split('id="canned_ids"', 1)[0][-300:] + page.split('id="canned_ids"', 1)[1][:200]
    )
    db.session.expire_all()
    assert db.session.get(CannedReply, thanks.id).usage_count == before  # opening is not using
    from .test_admin_desk import version_on

    resp = b.post(
        f"/admin/tickets/desk/{t.number}/reply",
        {
            "body": "Terima kasih!",
            "visibility": "public",
            "expected_version": version_on(page),
            "canned_ids": f"{thanks.id},{thanks.id},abc,999999",
        },
        form_url=desk(t.number),
    )
    assert resp.status_code == 302
    db.session.expire_all()
    assert db.session.get(CannedReply, thanks.id).usage_count == before + 1
    # A reply refused (stale version) counts nothing.
    b.post(
        f"/admin/tickets/desk/{t.number}/reply",
        {
            "body": "lagi",
            "visibility": "public",
            "expected_version": "1",
            "canned_ids": str(thanks.id),
        },
        form_url=desk(t.number),
    )
    db.session.expire_all()
    assert db.session.get(CannedReply, thanks.id).usage_count == before + 1


def test_canned_reply_pages_in_indonesian(login_as):
    b, _ = login_as(perm.MASTER_ADMIN, locale="id")
    html = b.get(URL).get_data(as_text=True)
    assert "Balasan siap pakai" in html and "Pintasan" in html
