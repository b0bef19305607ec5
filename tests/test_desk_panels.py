"""The desk's panels (customer history, more actions, the canned-reply picker): loaded
after the first paint by admin-desk.js, each also a page of its own without JavaScript.
The scope of each role is in the permissions matrix (tests/test_admin_permissions.py)."""

from __future__ import annotations

import re

from backoffice.domain import permissions as perm
from backoffice.domain import tickets as lifecycle
from backoffice.models import CannedReply, Priority, TicketStatus

from .test_admin_desk import desk, desk_page, reload, version_on


def panel_links(html: str) -> dict[str, str]:
    """{part: the link shown without JavaScript} of the desk page."""
    found = re.findall(r'data-panel-url="[^"]+">\s*<a href="([^"]+)"', html)
    return {re.search(r"/panel/(\w+)", u).group(1): u.replace("&amp;", "&") for u in found}


def test_without_javascript_each_panel_is_a_page_with_the_desks_version(login_as, make, db):
    customer = make.user(name="Rina Customer")
    earlier = make.ticket("finished", customer=customer, department="OPS", subject="Dulu <b>")
    t = make.ticket("team", customer=customer, department="OPS")
    make.user(perm.CUSTOMER_SERVICE, name="Sari Wulandari")
    db.session.commit()
    b, _ = login_as(perm.CUSTOMER_SERVICE, locale="en")
    html = b.get(desk(t.number), query_string={"from": "/admin/tickets/team/"}).get_data(
        as_text=True
    )
    links = panel_links(html)
    assert set(links) == {"actions", "customer", "canned"}
    # What the panels hold is not on the first paint.
    assert "Sari Wulandari" not in html and earlier.number not in html
    for part, url in links.items():
        assert "partial" not in url and f"version={t.version_id}" in url
        assert "from=" in url  # the list the agent came from goes along
        page = b.get(url).get_data(as_text=True)
        assert "<html" in page and "Back to the ticket" in page, part
    customer_page = b.get(links["customer"]).get_data(as_text=True)
    assert earlier.number in customer_page and "Dulu &lt;b&gt;" in customer_page
    actions = b.get(links["actions"]).get_data(as_text=True)
    assert "Sari Wulandari" in actions and 'name="from" value="/admin/tickets/team/"' in actions
    assert version_on(actions) == str(t.version_id)
    partial = b.get(links["actions"] + "&partial=1").get_data(as_text=True)
    assert "<html" not in partial and 'id="assign-colleague"' in partial


def test_a_panel_decides_on_the_version_the_desk_showed(login_as, make, db):
    """A colleague's change between the page and the panel is the usual conflict."""
    t = make.ticket("team", department="OPS")
    sari = make.user(perm.CUSTOMER_SERVICE, name="Sari Wulandari")
    db.session.commit()
    b, me = login_as(perm.CUSTOMER_SERVICE, locale="en")
    links = panel_links(b.get(desk(t.number)).get_data(as_text=True))
    lifecycle.set_priority(t, Priority.HIGH, me)  # someone else, meanwhile
    db.session.commit()
    actions = b.get(links["actions"] + "&partial=1").get_data(as_text=True)
    resp = b.post(
        f"/admin/tickets/desk/{t.number}/assign",
        {"assignee": str(sari.id), "expected_version": version_on(actions)},
        form_url=desk(t.number),
    )
    assert resp.status_code == 409 and "changed by someone else" in resp.get_data(as_text=True)
    assert reload(t).assignee_id is None


def test_the_canned_picker_without_javascript_fills_the_reply_box(login_as, make, db):
    t = make.ticket("team", department="OPS")
    b, me = login_as(perm.CUSTOMER_SERVICE, locale="en")
    db.session.add(
        CannedReply(title="Salam", shortcut="salam", body_id="Halo {nomor_tiket}", owner_id=me.id)
    )
    db.session.commit()
    picker = desk_page(b, t.number)
    reply_id = re.search(r'<option value="(\d+)">/salam', picker).group(1)
    html = b.get(desk(t.number), query_string={"canned": reply_id}).get_data(as_text=True)
    assert f"Halo {t.number}</textarea>" in html


def test_a_panel_with_nothing_in_it(login_as, make, db):
    """No canned reply to offer: the partial is empty (the desk hides its slot), the page
    says so."""
    t = make.ticket("team", department="OPS")
    db.session.commit()
    db.session.query(CannedReply).delete()
    db.session.commit()
    b, _ = login_as(perm.CUSTOMER_SERVICE, locale="en")
    url = f"{desk(t.number)}panel/canned"
    assert b.get(url, query_string={"partial": "1"}).get_data(as_text=True).strip() == ""
    assert "No canned replies are available to you." in b.get(url).get_data(as_text=True)
    assert reload(t).status is TicketStatus.TEAM


def test_the_conversations_channel_badges_speak_each_readers_language(login_as, make, db):
    """The badge is drawn once per channel and request (desk_context.channel_badge): an
    English and an Indonesian reader of one ticket each get their own."""
    t = make.ticket("team", department="OPS")
    db.session.commit()
    en, _ = login_as(perm.CUSTOMER_SERVICE, locale="en")
    id_, _ = login_as(perm.CUSTOMER_SERVICE, locale="id")
    for _round in range(2):
        assert "Channel: </span>" in en.get(desk(t.number)).get_data(as_text=True)
        assert "Saluran: </span>" in id_.get(desk(t.number)).get_data(as_text=True)
