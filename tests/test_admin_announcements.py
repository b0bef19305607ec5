"""The announcements' "Send / publish" page and the send log, over HTTP with CSRF on."""

from __future__ import annotations

import contextlib
import re
import threading

import pytest
from sqlalchemy import delete, func, select

from backoffice.channels import mailer
from backoffice.domain import announcements
from backoffice.domain import permissions as perm
from backoffice.domain.announcements import Audience
from backoffice.domain.loyalty import Segment
from backoffice.models import (
    Announcement,
    AnnouncementKind,
    AnnouncementSend,
    CustomerProfile,
    OrderStatus,
    OutboxEmail,
    User,
)

from .admin_support import flashes, form_data
from .conftest import csrf_from
from .smtp_server import running_smtp

BASE = "http://127.0.0.1:5000"


@pytest.fixture
def smtp(app, monkeypatch):
    yield from running_smtp(app, monkeypatch)


@pytest.fixture
def people(db, make):
    """Consenting customers in several segments and services, and people never targeted."""

    def customer(email, *, consent=True, segment=None, **fields):
        user = make.user(email=email, marketing_consent=consent, locale="en", **fields)
        if segment:
            db.session.add(CustomerProfile(user_id=user.id, segment=segment))
        return user

    p = {
        "loyal": customer("loyal@example.com", segment="loyal"),
        "at_risk": customer("risk@example.com", segment="at_risk"),
        "lost": customer("lost@example.com", segment="lost"),
        "fresh": customer("fresh@example.com"),  # no profile yet: new
        "no_consent": customer("nope@example.com", consent=False, segment="loyal"),
        "inactive": customer("gone@example.com", segment="loyal"),
        "staff": make.user(perm.CUSTOMER_SERVICE, email="cs@example.com", marketing_consent=True),
    }
    make.order(p["loyal"], product="REG")
    make.order(p["at_risk"], product="SAMEDAY")
    make.order(p["lost"], product="REG").status = OrderStatus.CANCELLED
    make.order(p["no_consent"], product="REG")
    make.order(p["inactive"], product="SAMEDAY")
    p["inactive"].active = False
    # Placing orders refreshed the profiles; put the crafted segments back.
    for key, segment in (("loyal", "loyal"), ("at_risk", "at_risk"), ("lost", "lost")):
        db.session.get(CustomerProfile, p[key].id).segment = segment
    # The orders' confirmations went out long ago: the outbox holds only announcements.
    db.session.execute(delete(OutboxEmail))
    db.session.commit()
    return p


@pytest.fixture
def news(db, make):
    ann = Announcement(
        kind=AnnouncementKind.IMPROVED_PRODUCT,
        title_id="Reguler kini lebih cepat",
        body_id="Sampai dalam 2 hari.",
        title_en="Regular is faster now",
        body_en="Arrives in 2 days.",
        product=make.product("REG"),
    )
    db.session.add(ann)
    db.session.commit()
    return ann


def page_url(ann, **args) -> str:
    query = "".join(f"&{k}={v}" for k, v in args.items())
    return f"/admin/announcements/send/?id={ann.id}{query}"


def previewed(browser, ann, **args) -> tuple[int, str]:
    resp = browser.get(page_url(ann, **args))
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    match = re.search(r'id="recipient-count" data-count="(\d+)"', html)
    return (int(match.group(1)) if match else None), html


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}"[^>]*value="([^"]*)"|value="([^"]*)"[^>]*name="{name}"', html)
    assert match, name
    return match.group(1) if match.group(1) is not None else match.group(2)


def confirm_fields(html: str) -> dict:
    form = html.split('id="send-form"', 1)[1].split("</form>", 1)[0]
    names = ("csrf_token", "audience", "value", "expected_count", "seen_sends")
    return {name: hidden(form, name) for name in names}


def confirm(browser, ann, html: str, **extra):
    """POST the confirmation form the preview page shows, with its CSRF token."""
    data = confirm_fields(html)
    data.update(extra)
    return browser.client.post(f"/admin/announcements/send/confirm/?id={ann.id}", data=data)


def outbox_of(db, send_id) -> list[str]:
    rows = db.session.scalars(
        select(OutboxEmail.recipient).where(OutboxEmail.announcement_send_id == send_id)
    ).all()
    return sorted(r.split("<")[-1].rstrip(">") for r in rows)


def test_count_preview_equals_audience_count_for_each_kind(db, people, news, login_as, make):
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    cases = [({"audience": "all"}, Audience.all_customers())]
    cases += [
        ({"audience": "segment", "segment": s.value}, Audience.in_segment(s)) for s in Segment
    ]
    for code in ("REG", "SAMEDAY", "CARGO"):
        pid = make.product(code).id
        cases.append(({"audience": "service", "service": pid}, Audience.ordered_service(pid)))
    seen = {}
    for args, audience in cases:
        count, _html = previewed(b, news, **args)
        assert count == announcements.audience_count(audience), args
        seen[tuple(args.values())] = count
    # Consent, activity and cancelled orders are respected in what the page shows.
    assert seen[("all",)] == 4  # loyal, at_risk, lost, fresh
    assert seen[("segment", "loyal")] == 1  # not the one without consent, not the inactive one
    assert seen[("segment", "new")] == 1  # no profile yet counts as new
    assert seen[("service", make.product("REG").id)] == 1  # the cancelled order does not count
    assert seen[("service", make.product("SAMEDAY").id)] == 1
    assert seen[("service", make.product("CARGO").id)] == 0
    # Counting changed nothing.
    assert db.session.scalar(select(func.count()).select_from(AnnouncementSend)) == 0
    assert db.session.scalar(select(func.count()).select_from(OutboxEmail)) == 0


def test_send_flow_queues_consenting_recipients_and_logs_the_figures(
    db, people, news, login_as, smtp, client
):
    b, master = login_as(perm.MASTER_ADMIN, name="Mira Master", locale="en")
    count, html = previewed(b, news, audience="all")
    assert count == 4 and 'id="send-form"' in html and 'id="previous-sends"' not in html
    resp = confirm(b, news, html, publish="y")
    assert resp.status_code == 302
    after = b.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Sending started: 4 emails for: All consenting customers." in flashes(after)
    send = db.session.scalars(select(AnnouncementSend)).one()
    assert (send.targeted, send.actor_id, send.audience_kind) == (4, master.id, "all")
    # The request only logged the send; the worker queues the emails.
    assert send.queueing and outbox_of(db, send.id) == []
    assert "(queueing)" in after
    assert announcements.queue_all() == 4
    assert outbox_of(db, send.id) == [
        "fresh@example.com",
        "lost@example.com",
        "loyal@example.com",
        "risk@example.com",
    ]
    db.session.expire_all()
    assert news.published and news.published_at is not None

    # Deliver, with one address refused for good, then one recipient unsubscribes.
    smtp.handler.refuse.add("lost@example.com")
    while mailer.send_pending().claimed:
        pass
    [message] = smtp.to("loyal@example.com")
    one_click = message["List-Unsubscribe"][1:-1].removeprefix(BASE)
    assert client.post(one_click, data={"List-Unsubscribe": "One-Click"}).status_code == 200

    log = b.get("/admin/announcements/log/").get_data(as_text=True)
    cells = re.sub(r"<[^>]+>", " ", log.split("model-list", 1)[1].split("</table>")[0])
    assert re.sub(r"\s+", " ", cells).count("Mira Master") == 1
    row = [c for c in re.findall(r"<td[^>]*>\s*([^<]*?)\s*</td>", log) if c]
    # targeted, queued, sent, failed, unsubscribed, waiting
    assert row[-6:] == ["4", "4", "3", "1", "1", "0"], row
    assert "All consenting customers" in log and news.title_id in log
    page = b.get(page_url(news)).get_data(as_text=True)
    figures = re.search(r'<tr data-send-id="\d+">(.*?)</tr>', page, re.S).group(1)
    numbers = re.findall(r'class="text-right">(\d+)<', figures)
    assert numbers == ["4", "3", "1", "1", "0"]


def test_a_repeat_send_to_the_same_audience_is_refused_unless_ticked(db, people, news, login_as):
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    _count, html = previewed(b, news, audience="segment", segment="loyal")
    assert confirm(b, news, html).status_code == 302
    # The same confirmation again (a double click, a second tab): refused.
    resp = confirm(b, news, html)
    assert resp.status_code == 302 and "segment=loyal" in resp.headers["Location"]
    assert "sent to this audience meanwhile" in flashes(b.get(resp.headers["Location"]).text)
    assert db.session.scalar(select(func.count()).select_from(AnnouncementSend)) == 1

    # The preview now warns, and sending again needs the tick.
    _count, html = previewed(b, news, audience="segment", segment="loyal")
    assert 'id="previous-sends"' in html and 'name="send_again"' in html
    resp = confirm(b, news, html)
    assert "already went to this audience" in flashes(b.get(resp.headers["Location"]).text)
    assert db.session.scalar(select(func.count()).select_from(AnnouncementSend)) == 1
    resp = confirm(b, news, html, send_again="y")
    assert resp.status_code == 302
    assert db.session.scalar(select(func.count()).select_from(AnnouncementSend)) == 2
    # Another audience is not a repeat.
    _count, html = previewed(b, news, audience="segment", segment="lost")
    assert 'id="previous-sends"' not in html
    assert confirm(b, news, html).status_code == 302
    assert db.session.scalar(select(func.count()).select_from(AnnouncementSend)) == 3


def test_a_count_that_changed_since_the_preview_sends_nothing(db, people, news, login_as, make):
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    count, html = previewed(b, news, audience="all")
    make.user(email="late@example.com", marketing_consent=True)
    db.session.commit()
    resp = confirm(b, news, html)
    text = flashes(b.get(resp.headers["Location"]).text)
    assert f"{count + 1} recipients instead of {count}" in text
    assert db.session.scalar(select(func.count()).select_from(OutboxEmail)) == 0


def test_nobody_to_send_to_and_unknown_audiences(db, people, news, login_as):
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    count, html = previewed(b, news, audience="segment", segment="potential_loyal")
    assert count == 0 and 'id="send-form"' not in html and 'id="nobody"' in html
    for args in (
        {"audience": "segment", "segment": "vip"},
        {"audience": "service", "service": "abc"},
        {"audience": "service", "service": "999999"},
        {"audience": "everyone"},
    ):
        count, html = previewed(b, news, **args)
        assert count is None and 'id="audience-error"' in html, args
    # A forged confirmation for nobody, or for an unknown audience, sends nothing.
    _count, html = previewed(b, news, audience="all")
    for forged in (
        {"audience": "segment", "value": "potential_loyal", "expected_count": "0"},
        {"audience": "segment", "value": "vip"},
        {"audience": "service", "value": "999999", "expected_count": "0"},
    ):
        resp = confirm(b, news, html, **forged)
        assert resp.status_code == 302
    assert db.session.scalar(select(func.count()).select_from(AnnouncementSend)) == 0


def test_confirmation_without_csrf_token_is_refused(db, people, news, login_as):
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    _count, html = previewed(b, news, audience="all")
    data = confirm_fields(html)
    del data["csrf_token"]
    resp = b.client.post(f"/admin/announcements/send/confirm/?id={news.id}", data=data)
    assert "CSRF" in flashes(b.get(resp.headers["Location"]).text)
    resp = b.client.post(f"/admin/announcements/publish/?id={news.id}", data={"published": "1"})
    assert "nothing changed" in flashes(b.get(resp.headers["Location"]).text)
    db.session.expire_all()
    assert not news.published
    assert db.session.scalar(select(func.count()).select_from(OutboxEmail)) == 0


def test_publish_and_unpublish_from_the_page(db, news, login_as, client):
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    url = page_url(news)
    resp = b.post(f"/admin/announcements/publish/?id={news.id}", {"published": "1"}, form_url=url)
    assert resp.status_code == 302
    db.session.expire_all()
    assert news.published and news.published_at is not None
    assert news.title_id in client.get("/").get_data(as_text=True)
    html = b.get(url).get_data(as_text=True)
    assert "Take it off the portal home" in html
    b.post(f"/admin/announcements/publish/?id={news.id}", {"published": "0"}, form_url=url)
    db.session.expire_all()
    assert not news.published
    assert news.title_id not in client.get("/").get_data(as_text=True)


def test_list_links_each_announcement_to_its_page(db, news, login_as):
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    html = b.get("/admin/announcements/").get_data(as_text=True)
    assert f'href="/admin/announcements/send/?id={news.id}"' in html
    # The send log belongs to the announcements: linked from their list, not a menu entry.
    assert 'id="send-log-link" href="/admin/announcements/log/"' in html
    nav = html.split('id="admin-navbar-collapse"', 1)[1].split("</nav>", 1)[0]
    assert "/admin/announcements/log/" not in nav
    assert b.get("/admin/announcements/send/?id=999999").status_code == 404
    assert b.get("/admin/announcements/send/?id=abc").status_code == 404


def test_send_log_filters_by_announcement(db, people, news, login_as):
    other = Announcement(kind=AnnouncementKind.NEWS, title_id="Libur lebaran", body_id="Tutup.")
    db.session.add(other)
    db.session.commit()
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    for ann in (news, other):
        _count, html = previewed(b, ann, audience="segment", segment="loyal")
        assert confirm(b, ann, html).status_code == 302
    page = b.get(page_url(news)).get_data(as_text=True)
    log_link = re.search(r'href="(/admin/announcements/log/\?[^"]+)"', page).group(1)
    filtered = b.get(log_link.replace("&amp;", "&")).get_data(as_text=True)
    table = filtered.split("model-list", 1)[1].split("</table>")[0]
    assert news.title_id in table and other.title_id not in table
    everything = b.get("/admin/announcements/log/").get_data(as_text=True)
    table = everything.split("model-list", 1)[1].split("</table>")[0]
    assert news.title_id in table and other.title_id in table


REFUSED = {
    perm.CUSTOMER_SERVICE: 403,
    perm.ADMIN_DEPARTMENT: 403,
    perm.CUSTOMER: 403,
    "anonymous": "login",
}


@pytest.mark.parametrize("role", sorted(REFUSED))
def test_other_roles_can_neither_see_nor_send(role, db, people, news, login_as, client):
    master, _ = login_as(perm.MASTER_ADMIN, locale="en")
    _count, html = previewed(master, news, audience="all")
    form = confirm_fields(html)
    del form["csrf_token"]
    if role == "anonymous":
        http, token = client, csrf_from(client.get("/login").get_data(as_text=True))
    else:
        b, _ = login_as(role)
        http, token = b.client, b.token("/account" if role == perm.CUSTOMER else "/admin/")
    urls = [
        ("GET", page_url(news)),
        ("GET", page_url(news, audience="all")),
        ("GET", "/admin/announcements/log/"),
        ("POST", f"/admin/announcements/send/confirm/?id={news.id}"),
        ("POST", f"/admin/announcements/publish/?id={news.id}"),
    ]
    for method, url in urls:
        if method == "GET":
            resp = http.get(url)
        else:
            data = dict(form, published="1", csrf_token=token)
            resp = http.post(url, data=data)
        if REFUSED[role] == "login":
            assert resp.status_code == 302 and "/login" in resp.headers["Location"], url
        else:
            assert resp.status_code == 403, (url, resp.status_code)
    db.session.expire_all()
    assert not news.published
    assert db.session.scalar(select(func.count()).select_from(AnnouncementSend)) == 0
    assert db.session.scalar(select(func.count()).select_from(OutboxEmail)) == 0
    assert db.session.get(User, people["loyal"].id).marketing_consent


def test_two_confirmations_at_once_send_once(app, db, people, news, make):
    """The send page's guard under real concurrency: each confirmation reads the earlier
    sends under the announcement's row lock, with a locking read, so the second one
    sees the first one's send even though its transaction started before it."""
    if db.engine.dialect.name == "sqlite":
        pytest.skip("SQLite serialises writers: two confirmations can never overlap there")
    master = make.user(perm.MASTER_ADMIN)
    db.session.commit()
    ids = (news.id, master.id)
    both_read = threading.Barrier(2, timeout=2)
    errors, sent = [], []

    def confirm_once():
        try:
            with app.app_context():
                ann = db.session.get(Announcement, ids[0])
                actor = db.session.get(User, ids[1])  # the transaction's snapshot starts here
                audience = Audience.in_segment("loyal")
                previous = announcements.previous_sends(ann, audience, lock=True)
                with contextlib.suppress(threading.BrokenBarrierError):
                    both_read.wait()  # only reachable by both if the reads are not serialised
                if not previous:
                    sent.append(announcements.send_announcement(ann, audience, actor).id)
                db.session.commit()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=confirm_once) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(sent) == 1
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(AnnouncementSend)) == 1


def test_the_text_cannot_change_while_a_send_is_being_queued(db, people, news, login_as):
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    _count, html = previewed(b, news, audience="all")
    assert confirm(b, news, html).status_code == 302
    url = f"/admin/announcements/edit/?id={news.id}"
    fields = form_data(b.get(url).get_data(as_text=True))
    fields["title_id"] = "Judul baru"
    refused = b.client.post(url, data=fields)
    assert "being queued for sending" in flashes(refused.get_data(as_text=True))
    db.session.expire_all()
    assert db.session.get(Announcement, news.id).title_id != "Judul baru"

    announcements.queue_all()
    fields = form_data(b.get(url).get_data(as_text=True))
    fields["title_id"] = "Judul baru"
    assert b.client.post(url, data=fields).status_code == 302
    db.session.expire_all()
    assert db.session.get(Announcement, news.id).title_id == "Judul baru"
