"""NUL, control and bidi-override characters are stripped wherever text enters: the
registration form, every back-office form, the portal forms (issue 9 item 7)."""

from __future__ import annotations

from sqlalchemy import select

from backoffice.cleaning import clean_text, one_line
from backoffice.domain import permissions as perm
from backoffice.models import FaqEntry, Ticket, User

from .admin_support import form_data

DIRTY = "Budi\u202e\x00 \u2066Santoso\u2069\x07"


def test_the_cleaners():
    assert one_line(DIRTY) == "Budi Santoso"
    assert clean_text("satu\r\ndua\x00\u202d\ttiga\x85") == "satu\ndua\ttiga"


def test_registration_strips_them_from_name_and_phone(browser, db):
    form = {
        "email": "bersih@example.com",
        "password": "kirim-paket-cepat-99",
        "password_confirm": "kirim-paket-cepat-99",
        "name": DIRTY,
        "phone": "\u202e+62 812\x00 3456 7890",
    }
    assert browser.post("/register", form).status_code == 302
    db.session.commit()
    user = db.session.scalar(select(User).where(User.email == "bersih@example.com"))
    assert (user.name, user.phone) == ("Budi Santoso", "+62 812 3456 7890")


def test_back_office_forms_strip_them(login_as, db):
    b, _ = login_as(perm.MASTER_ADMIN)
    entry = db.session.scalar(select(FaqEntry).order_by(FaqEntry.id))
    db.session.commit()
    url = f"/admin/faq/edit/?id={entry.id}"
    data = form_data(b.get(url).get_data(as_text=True))
    data["question_en"] = "Where is my \u202eparcel\x00?"
    data["answer_en"] = "Line one\x07\nLine \u2067two\u2069"
    assert b.client.post(url, data=data).status_code == 302
    db.session.expire_all()
    entry = db.session.get(FaqEntry, entry.id)
    assert entry.question_en == "Where is my parcel?"
    assert entry.answer_en == "Line one\nLine two"


def test_portal_ticket_text_loses_bidi_overrides(login_as, db):
    b, user = login_as(perm.CUSTOMER)
    resp = b.post(
        "/tickets/new",
        {"kind": "question", "subject": "Paket \u202egpj.exe", "body": "Halo\u2066 admin"},
        form_url="/tickets/new",
    )
    assert resp.status_code == 302
    db.session.commit()
    ticket = db.session.scalar(select(Ticket).where(Ticket.customer_id == user.id))
    assert ticket.subject == "Paket gpj.exe"


def test_a_value_a_field_already_parsed_is_left_alone():
    """The back office cleans every text field; a field that parsed its text into a number
    (business hours' HH:MM → minutes) must keep the number: "1200" < "480" as text, which let
    a shift ending before it started through to the database's CHECK."""
    from backoffice.cleaning import clean_text, one_line

    assert clean_text(1200) == 1200 and one_line(480) == 480 and clean_text(None) is None
    assert one_line(" a\u202eb \n c ") == "ab c"
