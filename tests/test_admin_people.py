"""The master admin's administration, and customers and orders for customer service."""

from __future__ import annotations

from sqlalchemy import select

from backoffice.domain import permissions as perm
from backoffice.models import (
    Announcement,
    Department,
    FaqEntry,
    OrderStatus,
    Product,
    Role,
    RoutingRule,
    User,
)

from .admin_support import flashes, form_data
from .conftest import Browser


def role_id(db, name: str) -> str:
    return str(db.session.scalar(select(Role.id).where(Role.name == name)))


def staff_form(db, **overrides) -> dict:
    data = {
        "email": "agen.baru@carebox.example",
        "name": "Agen Baru",
        "phone": "",
        "roles": [role_id(db, perm.CUSTOMER_SERVICE)],
        "department": "__None",
        "locale": "id",
        "active": "y",
        "new_password": "rahasia-panjang-1",
    }
    data.update(overrides)
    return data


def test_create_staff_user_who_can_then_sign_in(app, db, login_as):
    b, _ = login_as(perm.MASTER_ADMIN)
    resp = b.post("/admin/staff/new/", staff_form(db))
    assert resp.status_code == 302, flashes(resp.get_data(as_text=True))
    user = db.session.scalar(select(User).where(User.email == "agen.baru@carebox.example"))
    assert user is not None and user.active and [r.name for r in user.roles] == ["customer_service"]
    assert user.fs_uniquifier and user.password
    fresh = Browser(app.test_client())
    fresh.login(user, password="rahasia-panjang-1")
    assert fresh.get("/admin/tickets/team/").status_code == 200


def test_staff_screens_never_show_secrets(db, login_as, make):
    b, _ = login_as(perm.MASTER_ADMIN)
    agent = make.user(perm.CUSTOMER_SERVICE, password="sangat-rahasia-99")
    db.session.commit()
    for url in (
        "/admin/staff/",
        f"/admin/staff/edit/?id={agent.id}",
        f"/admin/staff/details/?id={agent.id}",
    ):
        html = b.get(url).get_data(as_text=True)
        assert agent.fs_uniquifier not in html, url
        assert agent.password not in html, url
        assert "sangat-rahasia-99" not in html, url
        assert 'name="password"' not in html and 'name="fs_uniquifier"' not in html


def test_staff_form_rules(db, login_as, make):
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    taken = make.user(perm.CUSTOMER_SERVICE, email="dipakai@carebox.example")
    db.session.commit()
    cases = [
        (staff_form(db, email="DIPAKAI@carebox.example"), "already"),  # either check
        (staff_form(db, new_password=""), "needs a password"),
        (staff_form(db, new_password="pendek"), "at least 8"),
        (staff_form(db, roles=[]), "at least one staff role"),
        (staff_form(db, roles=[role_id(db, perm.ADMIN_DEPARTMENT)]), "needs a department"),
        # The customer role is not on offer here: it is dropped, so no staff role is left.
        (staff_form(db, roles=[role_id(db, perm.CUSTOMER)]), "at least one staff role"),
        (staff_form(db, email="bukan-email"), "invalid"),
    ]
    for data, message in cases:
        resp = b.post("/admin/staff/new/", data, form_url="/admin/staff/new/")
        assert resp.status_code == 200, message
        assert message.lower() in resp.get_data(as_text=True).lower(), message
    assert db.session.scalar(select(User).where(User.name == "Agen Baru")) is None
    assert taken.email == "dipakai@carebox.example"


def test_master_cannot_lock_themselves_out(db, login_as):
    b, me = login_as(perm.MASTER_ADMIN, locale="en")
    # The posted form is applied to the signed-in user before the refusal: while
    # `active` is off, Flask-Login takes them for anonymous, and the cookie decides.
    b.client.set_cookie("lang", "en")
    url = f"/admin/staff/edit/?id={me.id}"
    base = {
        "email": me.email,
        "name": me.name,
        "roles": [role_id(db, perm.MASTER_ADMIN)],
        "department": "__None",
        "locale": "en",  # keeps the language the test reads
        "active": "y",
    }
    resp = b.post(url, {**base, "active": ""}, form_url=url)
    assert "cannot deactivate your own account" in resp.get_data(as_text=True)
    resp = b.post(url, {**base, "roles": [role_id(db, perm.CUSTOMER_SERVICE)]}, form_url=url)
    assert "cannot remove your own master admin role" in resp.get_data(as_text=True)
    db.session.expire_all()
    me = db.session.get(User, me.id)
    assert me.active and [r.name for r in me.roles] == ["master_admin"]
    # The deactivate action skips oneself as well.
    b.post(
        "/admin/staff/action/",
        {"action": "deactivate", "rowid": str(me.id)},
        form_url="/admin/staff/",
    )
    db.session.expire_all()
    assert db.session.get(User, me.id).active
    assert b.get("/admin/staff/").status_code == 200


def test_deactivating_staff_ends_their_access(app, db, login_as, make):
    master, _ = login_as(perm.MASTER_ADMIN)
    agent_browser, agent = login_as(perm.CUSTOMER_SERVICE)
    assert agent_browser.get("/admin/").status_code == 200
    old_uniquifier = agent.fs_uniquifier
    resp = master.post(
        "/admin/staff/action/",
        {"action": "deactivate", "rowid": str(agent.id)},
        form_url="/admin/staff/",
    )
    assert resp.status_code == 302
    db.session.expire_all()
    agent = db.session.get(User, agent.id)
    assert not agent.active and agent.fs_uniquifier != old_uniquifier
    assert agent_browser.get("/admin/").status_code in (302, 403)


def test_edit_staff_roles_and_department(db, login_as, make):
    b, _ = login_as(perm.MASTER_ADMIN)
    agent = make.user(perm.CUSTOMER_SERVICE)
    db.session.commit()
    ops = make.department("OPS")
    url = f"/admin/staff/edit/?id={agent.id}"
    resp = b.post(
        url,
        {
            "email": agent.email,
            "name": "Agen Operasional",
            "roles": [role_id(db, perm.ADMIN_DEPARTMENT)],
            "department": str(ops.id),
            "locale": "en",
            "active": "y",
            "new_password": "",
        },
    )
    assert resp.status_code == 302, flashes(resp.get_data(as_text=True))
    db.session.expire_all()
    agent = db.session.get(User, agent.id)
    assert [r.name for r in agent.roles] == ["admin_department"] and agent.department_id == ops.id
    assert agent.name == "Agen Operasional" and agent.locale == "en"


def test_departments_and_routing_rules(db, login_as, make):
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    resp = b.post(
        "/admin/departments/new/",
        {"code": "LEGAL", "name_id": "Hukum", "name_en": "Legal", "email": "", "active": "y"},
    )
    assert resp.status_code == 302
    legal = db.session.scalar(select(Department).where(Department.code == "LEGAL"))
    assert legal is not None and legal.active
    resp = b.post(
        "/admin/departments/new/",
        {"code": "legal team", "name_id": "x", "name_en": "x"},
    )
    assert resp.status_code == 200 and "capital letters" in resp.get_data(as_text=True)

    resp = b.post(
        "/admin/routing_rules/new/",
        {
            "department": str(legal.id),
            "kind": "complaint",
            "product": "__None",
            "position": "10",
            "active": "y",
        },
    )
    assert resp.status_code == 302
    rule = db.session.scalar(select(RoutingRule).where(RoutingRule.department_id == legal.id))
    assert rule.kind.value == "complaint"
    html = b.get(f"/admin/routing_rules/edit/?id={rule.id}").get_data(as_text=True)
    assert '<option selected value="complaint">' in html or 'value="complaint" selected' in html
    # A new complaint now goes to LEGAL.
    t = make.ticket("progress", kind="complaint")
    assert t.department_id == legal.id

    # A rule naming nothing is the catch-all (issue 13): the form says so.
    resp = b.post(
        "/admin/routing_rules/new/",
        {
            "department": str(legal.id),
            "situation": "",
            "kind": "",
            "product": "__None",
            "position": "10",
            "active": "y",
        },
        follow_redirects=True,
    )
    assert "This rule is a catch-all" in resp.get_data(as_text=True)
    assert make.ticket("progress", kind="criticism").department_id == legal.id


def test_faq_products_and_announcements(db, login_as):
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    category_id = db.session.scalar(select(FaqEntry.category_id).limit(1))
    resp = b.post(
        "/admin/faq/new/",
        {
            "key": "cara-klaim",
            "category": str(category_id),
            "question_id": "Bagaimana cara klaim?",
            "answer_id": "Isi formulir klaim.",
            "question_en": "",
            "answer_en": "",
            "position": "5",
        },
    )
    assert resp.status_code == 302, flashes(resp.get_data(as_text=True))
    entry = db.session.scalar(select(FaqEntry).where(FaqEntry.key == "cara-klaim"))
    assert entry is not None and entry.published is False  # unchecked box
    b.post(
        "/admin/faq/action/", {"action": "publish", "rowid": str(entry.id)}, form_url="/admin/faq/"
    )
    db.session.expire_all()
    assert db.session.get(FaqEntry, entry.id).published

    product = db.session.scalar(select(Product).where(Product.code == "REG"))
    url = f"/admin/products/edit/?id={product.id}"
    html = b.get(url).get_data(as_text=True)
    assert 'value="service" selected' in html or '<option selected value="service">' in html
    resp = b.post(
        url,
        {
            "code": "REG",
            "kind": "service",
            "name_id": product.name_id,
            "name_en": product.name_en,
            "base_price": "9000",
            "price_per_kg": str(product.price_per_kg),
            "min_weight_kg": "5",
            "max_weight_kg": "1",
            "eta_days": product.eta_days,
            "badge": "improved",
            "position": "1",
            "active": "y",
        },
    )
    assert "maximum weight is below the minimum" in resp.get_data(as_text=True)

    resp = b.post(
        "/admin/announcements/new/",
        {
            "kind": "new_product",
            "title_id": "Layanan baru",
            "body_id": "Kini ada layanan kilat.",
            "title_en": "",
            "body_en": "",
            "product": "__None",
            "published": "y",
        },
    )
    assert resp.status_code == 302, flashes(resp.get_data(as_text=True))
    news = db.session.scalar(select(Announcement).where(Announcement.title_id == "Layanan baru"))
    assert news.published and news.published_at is not None and news.kind.value == "new_product"


def test_customers_are_read_only_with_orders_and_tickets(db, login_as, make):
    order = make.order()
    customer = order.customer
    visible = make.ticket("team", customer=customer, subject="Paket telat")
    hidden = make.ticket("progress", customer=customer, subject="Belum dikirim")
    db.session.commit()
    b, _ = login_as(perm.CUSTOMER_SERVICE, locale="en")
    listing = b.get("/admin/customers/").get_data(as_text=True)
    assert customer.email in listing
    html = b.get(f"/admin/customers/details/?id={customer.id}").get_data(as_text=True)
    assert order.number in html and visible.number in html
    assert hidden.number not in html and "1 more tickets are outside your lists" in html
    assert "/admin/customers/edit/" not in html


def test_order_status_changes_follow_the_rules(db, login_as, make):
    order = make.order()
    db.session.commit()
    b, user = login_as(perm.CUSTOMER_SERVICE, locale="en")
    url = f"/admin/orders/details/?id={order.id}"
    html = b.get(url).get_data(as_text=True)
    status_form = html.split('id="status-form"', 1)[1].split("</form>", 1)[0]
    assert 'value="picked_up"' in status_form and 'value="delivered"' not in status_form
    status_url = f"/admin/orders/status/?id={order.id}"

    resp = b.post(status_url, {"seen": "placed", "to": "delivered"}, form_url=url)
    assert resp.status_code == 302
    assert "cannot go from" in flashes(b.get(url).get_data(as_text=True))
    db.session.expire_all()
    assert order.status is OrderStatus.PLACED

    resp = b.post(
        status_url, {"seen": "placed", "to": "picked_up", "note": "Kurir Budi"}, form_url=url
    )
    assert resp.status_code == 302
    db.session.expire_all()
    assert order.status is OrderStatus.PICKED_UP
    assert order.events[-1].actor_id == user.id and order.events[-1].note == "Kurir Budi"

    # A page that still shows "placed" cannot move the order again.
    resp = b.post(status_url, {"seen": "placed", "to": "cancelled"}, form_url=url)
    assert "changed by someone else" in flashes(b.get(url).get_data(as_text=True))
    db.session.expire_all()
    assert order.status is OrderStatus.PICKED_UP

    listing = b.get("/admin/orders/?search=" + order.number).get_data(as_text=True)
    assert order.number in listing


def test_two_admins_editing_one_product_cannot_overwrite_each_other(login_as, db):
    first, _ = login_as(perm.MASTER_ADMIN, locale="en")
    second, _ = login_as(perm.MASTER_ADMIN)
    product = db.session.scalar(select(Product).where(Product.code == "REG"))
    url = f"/admin/products/edit/?id={product.id}"
    mine, theirs = (form_data(b.get(url).get_data(as_text=True)) for b in (first, second))
    assert mine["row_state"] and mine["code"] == "REG"

    theirs["base_price"] = "9500"
    assert second.client.post(url, data=theirs).status_code == 302
    mine["name_en"] = "Regular Plus"
    refused = first.client.post(url, data=mine)
    assert refused.status_code == 200
    page = refused.get_data(as_text=True)
    assert "Someone else changed this record" in flashes(page)
    assert "Regular Plus" in page  # what I typed is still on screen
    db.session.expire_all()
    product = db.session.get(Product, product.id)
    assert (product.base_price, product.name_en) == (9500, "Regular")

    mine = form_data(first.get(url).get_data(as_text=True))  # opened again: their price shows
    assert mine["base_price"] == "9500.00"
    mine["name_en"] = "Regular Plus"
    assert first.client.post(url, data=mine).status_code == 302
    db.session.expire_all()
    product = db.session.get(Product, product.id)
    assert (product.base_price, product.name_en) == (9500, "Regular Plus")
