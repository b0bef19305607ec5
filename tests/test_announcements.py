"""Announcements: audiences, consent, sending through the outbox, one-click unsubscribe."""

from __future__ import annotations

import json
import threading
import time

import pytest
from itsdangerous.timed import TimestampSigner
from sqlalchemy import delete, select

from backoffice.channels import mailer
from backoffice.domain import PermissionDenied, announcements
from backoffice.domain import permissions as perm
from backoffice.domain.announcements import Audience, UnsubscribeOutcome
from backoffice.models import (
    Announcement,
    AnnouncementKind,
    CustomerProfile,
    OrderStatus,
    OutboxEmail,
    User,
)

from .smtp_server import html_of, running_smtp, text_of

BASE = "http://127.0.0.1:5000"
EN = {"Accept-Language": "en"}
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
def smtp(app, monkeypatch):
    yield from running_smtp(app, monkeypatch)


@pytest.fixture
def people(db, make):
    """Customers covering every targeting rule, plus people who must never be targeted."""

    def customer(email, *, consent=True, segment=None, locale="id", **fields):
        user = make.user(email=email, marketing_consent=consent, locale=locale, **fields)
        if segment:
            db.session.add(CustomerProfile(user_id=user.id, segment=segment))
        return user

    p = {
        "loyal_reg": customer("loyal@example.com", segment="loyal", locale="en"),
        "new_sameday": customer("new@example.com"),  # its order makes it "new"
        "lost_cancelled": customer("lost@example.com", segment="lost"),
        "no_profile": customer("fresh@example.com"),  # not refreshed yet: counts as new
        "no_consent": customer("nope@example.com", consent=False, segment="loyal"),
        "inactive": customer("gone@example.com", segment="loyal"),
        "staff": make.user(perm.CUSTOMER_SERVICE, email="cs@example.com", marketing_consent=True),
        "master": make.user(perm.MASTER_ADMIN, email="boss@example.com"),
    }
    make.order(p["loyal_reg"], product="REG")
    make.order(p["new_sameday"], product="SAMEDAY")
    make.order(p["lost_cancelled"], product="REG").status = OrderStatus.CANCELLED
    make.order(p["no_consent"], product="REG")
    make.order(p["inactive"], product="REG")
    p["inactive"].active = False
    # Placing orders refreshed profiles; put the crafted segments back.
    for key, segment in (("loyal_reg", "loyal"), ("lost_cancelled", "lost")):
        db.session.get(CustomerProfile, p[key].id).segment = segment
    # The orders' confirmations went out long ago: the outbox holds only announcements.
    db.session.execute(delete(OutboxEmail))
    db.session.commit()
    return p


@pytest.fixture
def announcement(db, make):
    ann = Announcement(
        kind=AnnouncementKind.NEW_PRODUCT,
        title_id="Layanan baru: Kargo <Kilat>",
        body_id='Kirim barang besar & berat.\nHarga "spesial" minggu ini.',
        title_en="New service: <Express> Cargo",
        body_en="Ship big & heavy items.",
        product=make.product("REG"),
    )
    db.session.add(ann)
    db.session.commit()
    return ann


def emails(rows) -> list[str]:
    return sorted(r.recipient.split("<")[-1].rstrip(">") for r in rows)


def test_audience_counts_of_each_targeting_choice(db, people, make):
    assert announcements.audience_count(Audience.all_customers()) == 4
    assert announcements.audience_count(Audience.in_segment("loyal")) == 1
    assert announcements.audience_count(Audience.in_segment("new")) == 2  # profile or none yet
    assert announcements.audience_count(Audience.in_segment("lost")) == 1
    assert announcements.audience_count(Audience.in_segment("at_risk")) == 0
    reg = make.product("REG").id
    assert announcements.audience_count(Audience.ordered_service(reg)) == 1  # cancelled: no
    sameday = make.product("SAMEDAY").id
    assert announcements.audience_count(Audience.parse("service", str(sameday))) == 1
    got = db.session.scalars(announcements.recipients(Audience.all_customers())).all()
    assert {u.email for u in got} == {
        "loyal@example.com",
        "new@example.com",
        "lost@example.com",
        "fresh@example.com",
    }


def test_audience_parse_refuses_unknown_choices():
    for kind, value in (("segment", "vip"), ("service", "abc"), ("everyone", None)):
        with pytest.raises(announcements.DomainError):
            Audience.parse(kind, value)


def test_only_content_managers_may_send(db, people, announcement):
    with pytest.raises(PermissionDenied):
        announcements.send_announcement(announcement, Audience.all_customers(), people["staff"])


def test_send_queues_one_email_per_consenting_recipient(db, people, announcement, smtp):
    log = announcements.send_announcement(announcement, Audience.all_customers(), people["master"])
    db.session.commit()
    assert log.targeted == 4 and log.actor_id == people["master"].id
    assert log.queueing and db.session.scalars(select(OutboxEmail)).all() == []
    report = mailer.work()  # the worker's turn: queue the announcement, then send
    assert (report.queued, report.claimed, report.sent) == (4, 4, 4)
    db.session.commit()
    assert (log.queued, log.queueing, log.queued_through) == (4, False, people["no_profile"].id)
    # The label is written in the sender's language (here the default one).
    assert log.audience_kind == "all"
    assert log.audience_label == str(Audience.all_customers().describe())
    rows = db.session.scalars(
        select(OutboxEmail).where(OutboxEmail.announcement_send_id == log.id)
    ).all()
    assert emails(rows) == [
        "fresh@example.com",
        "lost@example.com",
        "loyal@example.com",
        "new@example.com",
    ]
    assert {r.category for r in rows} == {"announcement"}
    messages = smtp.messages
    assert len(messages) == 4
    [english] = smtp.to("loyal@example.com")
    assert english["Subject"] == "New service: <Express> Cargo"
    assert "Ship big &amp; heavy items." in html_of(english)
    assert "&lt;Express&gt;" in html_of(english)
    [indonesian] = smtp.to("new@example.com")
    assert indonesian["Subject"] == "Layanan baru: Kargo <Kilat>"
    assert 'Harga "spesial" minggu ini.' in text_of(indonesian)
    assert "Harga &#34;spesial&#34; minggu ini." in html_of(indonesian)
    for message in messages:
        header = message["List-Unsubscribe"]
        assert header.startswith(f"<{BASE}/email/unsubscribe/")
        url = header[1:-1]
        assert url in text_of(message) and f'href="{url}"' in html_of(message)
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    db.session.commit()  # a new snapshot: the worker counted on its own connection
    assert (log.sent, log.failed, log.unsubscribed, log.pending) == (4, 0, 0, 0)


def test_the_worker_queues_a_chunk_at_a_time_and_reads_consent_when_it_queues(
    db, people, announcement, monkeypatch
):
    monkeypatch.setattr(announcements, "CHUNK", 2)
    log = announcements.send_announcement(announcement, Audience.all_customers(), people["master"])
    people["new_sameday"].marketing_consent = False  # withdrawn after the admin confirmed
    db.session.commit()
    assert announcements.queue_next_chunk() == 2
    db.session.commit()
    assert (log.queued, log.queueing, log.pending) == (2, True, 4)
    assert announcements.queue_next_chunk() == 1  # the last, short chunk ends the send
    db.session.commit()
    assert (log.queued, log.queueing, log.pending) == (3, False, 3)
    assert announcements.queue_next_chunk() == 0  # nothing is left waiting
    rows = db.session.scalars(select(OutboxEmail)).all()
    assert emails(rows) == ["fresh@example.com", "lost@example.com", "loyal@example.com"]


def test_an_announcement_that_cannot_be_queued_does_not_hold_up_other_mail(
    db, people, announcement, smtp, monkeypatch, caplog
):
    from backoffice.domain.outbox import enqueue

    announcements.send_announcement(announcement, Audience.all_customers(), people["master"])
    enqueue("someone@example.com", "Tiket diterima", "Halo")
    db.session.commit()

    def broken(*args):
        raise RuntimeError("template broke")

    render = announcements._render
    monkeypatch.setattr(announcements, "_render", broken)
    report = mailer.work()
    assert (report.queued, report.sent) == (0, 1)
    assert [m["To"] for m in smtp.messages] == ["someone@example.com"]
    assert "could not queue the next announcement emails" in caplog.text
    monkeypatch.setattr(announcements, "_render", render)
    assert mailer.work().queued == 4  # once mended, the send goes on


def test_two_workers_queue_each_recipient_once(app, db, people, announcement, monkeypatch):
    if db.engine.dialect.name == "sqlite":
        pytest.skip("SQLite serialises writers: two workers never overlap there")
    monkeypatch.setattr(announcements, "CHUNK", 1)
    log = announcements.send_announcement(announcement, Audience.all_customers(), people["master"])
    db.session.commit()
    start = threading.Barrier(2)
    errors, queued = [], []

    def worker():
        try:
            with app.app_context():
                start.wait()
                queued.append(announcements.queue_all())
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and sum(queued) == 4
    db.session.commit()
    rows = db.session.scalars(select(OutboxEmail)).all()
    assert emails(rows) == [
        "fresh@example.com",
        "lost@example.com",
        "loyal@example.com",
        "new@example.com",
    ]
    assert (log.queued, log.queueing) == (4, False)


def test_send_log_counts_failures_and_unsubscribes(db, people, announcement, smtp, client):
    smtp.handler.refuse.add("lost@example.com")
    log = announcements.send_announcement(
        announcement, Audience.in_segment("lost"), people["master"]
    )
    other = announcements.send_announcement(
        announcement, Audience.in_segment("loyal"), people["master"]
    )
    loyal_label = str(Audience.in_segment("loyal").describe())  # the sender's language
    db.session.commit()
    while (report := mailer.work()).claimed or report.queued:
        pass
    [msg] = smtp.to("loyal@example.com")
    link = msg["List-Unsubscribe"][1:-1].removeprefix(BASE)
    assert client.get(link, headers=EN).status_code == 200  # a scanner's GET counts nothing
    resp = client.post(link, data=ONE_CLICK, headers=EN)
    assert resp.status_code == 200
    db.session.commit()
    assert (log.targeted, log.sent, log.failed, log.unsubscribed) == (1, 0, 1, 0)
    assert (other.targeted, other.sent, other.failed, other.unsubscribed) == (1, 1, 0, 1)
    newest_first = db.session.scalars(announcements.send_log(announcement.id)).all()
    assert [s.id for s in newest_first] == [other.id, log.id]
    assert other.audience_label == loyal_label


def test_unsubscribe_link_asks_before_it_clears_consent_once(db, people, client):
    user = people["loyal_reg"]
    token = announcements.unsubscribe_token(user.id)
    url = f"/email/unsubscribe/{token}"
    for _ in range(2):  # mail scanners and previews follow links: GET changes nothing
        resp = client.get(url, headers=EN)
        assert resp.status_code == 200
        html = resp.get_data(as_text=True)
        assert "Unsubscribe from carebox news?" in html and "l•••@example.com" in html
        assert resp.headers["Cache-Control"] == "no-store"
        assert resp.headers["Referrer-Policy"] == "no-referrer"
    db.session.expire_all()
    assert user.marketing_consent is True and user.consent_changed_at is None
    # The page's one button posts the RFC 8058 body back to the same URL.
    form = html.split('id="unsubscribe-form"', 1)[1].split("</form>", 1)[0]
    assert f'action="{url}"' in html and 'method="post"' in html
    assert 'name="List-Unsubscribe" value="One-Click"' in form
    resp = client.post(url, data=ONE_CLICK, headers=EN)
    assert resp.status_code == 200
    assert "You are unsubscribed" in resp.get_data(as_text=True)
    db.session.expire_all()
    assert user.marketing_consent is False and user.consent_changed_at is not None
    again = client.post(url, data=ONE_CLICK, headers=EN)
    assert again.status_code == 200 and "already" in again.get_data(as_text=True)
    later = client.get(url, headers=EN)
    assert later.status_code == 200 and "already" in later.get_data(as_text=True)
    assert announcements.audience_count(Audience.all_customers()) == 3


def test_one_click_post_from_a_mail_client_needs_no_csrf(db, people, client):
    user = people["new_sameday"]
    token = announcements.unsubscribe_token(user.id)
    # A POST without the RFC 8058 body only shows the question again.
    resp = client.post(f"/email/unsubscribe/{token}", data={}, headers=EN)
    assert resp.status_code == 200 and "Unsubscribe from carebox news?" in resp.text
    db.session.expire_all()
    assert user.marketing_consent is True
    # What a mail client sends for List-Unsubscribe-Post: no cookie, no CSRF token.
    resp = client.post(
        f"/email/unsubscribe/{token}",
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert resp.status_code == 200
    db.session.expire_all()
    assert user.marketing_consent is False


def test_tampered_or_expired_unsubscribe_changes_nothing(db, people, client, monkeypatch):
    user = people["no_profile"]
    token = announcements.unsubscribe_token(user.id)
    payload, stamp, signature = token.split(".")
    other = announcements.unsubscribe_token(people["loyal_reg"].id).split(".")[0]
    # A character in the middle: base64's last one carries padding bits, so changing
    # the end of a signature can leave its bytes as they were.
    flipped = "A" if signature[5] != "A" else "B"
    for bad in (
        f"{payload}.{stamp}.{signature[:5]}{flipped}{signature[6:]}",  # signature tampered
        f"{other}.{stamp}.{signature}",  # payload swapped to someone else
        "not-a-token",
    ):
        for resp in (
            client.get(f"/email/unsubscribe/{bad}", headers=EN),
            client.post(f"/email/unsubscribe/{bad}", data=ONE_CLICK, headers=EN),
        ):
            assert resp.status_code == 400 and "not valid" in resp.get_data(as_text=True)
            assert 'id="unsubscribe-form"' not in resp.get_data(as_text=True)
    real_now = time.time()
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(real_now - 181 * 86400))
    expired = announcements.unsubscribe_token(user.id)
    monkeypatch.undo()
    for resp in (
        client.get(f"/email/unsubscribe/{expired}", headers=EN),
        client.post(f"/email/unsubscribe/{expired}", data=ONE_CLICK, headers=EN),
    ):
        assert resp.status_code == 400 and "expired" in resp.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, user.id).marketing_consent is True
    assert db.session.get(User, people["loyal_reg"].id).marketing_consent is True


def test_unsubscribe_outcomes_in_the_domain(db, people):
    user = people["lost_cancelled"]
    token = announcements.unsubscribe_token(user.id)
    assert announcements.unsubscribe(token) is UnsubscribeOutcome.UNSUBSCRIBED
    assert announcements.unsubscribe(token) is UnsubscribeOutcome.ALREADY
    assert announcements.unsubscribe("x.y.z") is UnsubscribeOutcome.INVALID
    ghost = announcements.unsubscribe_token(999_999)
    assert announcements.unsubscribe(ghost) is UnsubscribeOutcome.INVALID


def test_checking_a_token_changes_nothing(db, people, announcement):
    user = people["loyal_reg"]
    log = announcements.send_announcement(
        announcement, Audience.in_segment("loyal"), people["master"]
    )
    token = announcements.unsubscribe_token(user.id, log.id)
    checked = announcements.check_unsubscribe(token)
    assert checked.outcome is UnsubscribeOutcome.SUBSCRIBED
    assert (checked.user.id, checked.send_id) == (user.id, log.id)
    assert user.marketing_consent is True and log.unsubscribed == 0
    assert announcements.unsubscribe(token) is UnsubscribeOutcome.UNSUBSCRIBED
    assert announcements.check_unsubscribe(token).outcome is UnsubscribeOutcome.ALREADY
    assert announcements.check_unsubscribe("x.y.z").outcome is UnsubscribeOutcome.INVALID


def test_publish_is_for_content_managers(db, people, announcement):
    with pytest.raises(PermissionDenied):
        announcements.publish(announcement, people["staff"])
    announcements.publish(announcement, people["master"])
    assert announcement.published and announcement.published_at is not None
    announcements.unpublish(announcement, people["master"])
    assert not announcement.published


def test_send_refuses_an_empty_announcement(db, people):
    empty = Announcement(title_id=" ", body_id="")
    db.session.add(empty)
    with pytest.raises(announcements.DomainError):
        announcements.send_announcement(empty, Audience.all_customers(), people["master"])


def test_headers_are_stored_as_json(db, people, announcement):
    announcements.send_announcement(announcement, Audience.in_segment("loyal"), people["master"])
    announcements.queue_all()
    row = db.session.scalars(select(OutboxEmail)).one()
    assert set(json.loads(row.headers)) == {"List-Unsubscribe", "List-Unsubscribe-Post"}


def test_list_unsubscribe_goes_over_the_wire_raw_on_one_line(db, people, announcement, smtp):
    """RFC 2369/8058: mail clients act on `List-Unsubscribe: <https://…>` as sent, not on
    an RFC 2047 word (`=?utf-8?q?…`), which the email package's default folding makes of
    a URL longer than 78 characters (issue 9 item 16)."""
    announcements.send_announcement(announcement, Audience.all_customers(), people["master"])
    db.session.commit()
    assert mailer.work().sent == 4
    raw = smtp.raw
    assert len(raw) == 4
    for data in raw:
        lines = data.split(b"\r\n")
        [header] = [line for line in lines if line.lower().startswith(b"list-unsubscribe:")]
        url = header.split(b": ", 1)[1]
        assert url.startswith(b"<" + BASE.encode() + b"/email/unsubscribe/") and url.endswith(b">")
        assert len(header) > 78  # long enough that the default policy would have folded it
        assert b"=?" not in header
        following = lines[lines.index(header) + 1]
        assert not following[:1].isspace()  # not folded onto a continuation line
        assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in lines
