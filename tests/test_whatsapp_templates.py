"""Approved WhatsApp templates: the master admin's list, the desk's picker outside the
24-hour window, and what the Graph API stand-in received."""

from __future__ import annotations

import json
import re

from sqlalchemy import select

from backoffice.channels.whatsapp_out import send_pending
from backoffice.domain import permissions as perm
from backoffice.domain import whatsapp_templates
from backoffice.models import (
    OutboxStatus,
    OutboxWhatsApp,
    TicketMessage,
    WhatsAppSendKind,
    WhatsAppTemplate,
    WhatsAppTemplateUse,
)

from .admin_support import flashes
from .test_admin_desk import desk, version_on
from .test_whatsapp_outbound import SENDER, customer_writes, rows

URL = "/admin/whatsapp-templates/"


def add_template(
    db,
    name="carebox_info_tiket",
    params=("nomor_tiket", "nama_pelanggan", "catatan"),
    use=WhatsAppTemplateUse.DESK,
    language="id",
    body="",
):
    row = WhatsAppTemplate(
        name=name,
        language=language,
        use=use,
        parameters=json.dumps(list(params)),
        body=body,
        active=True,
    )
    db.session.add(row)
    db.session.commit()
    return row


def test_the_master_admin_enters_a_template(login_as, db):
    b, _master = login_as(perm.MASTER_ADMIN)
    assert b.get(URL).status_code == 200
    assert b.get(URL + "new/").status_code == 200
    resp = b.post(
        URL + "new/",
        {
            "name": "carebox_paket_diantar",
            "language": "id",
            "use": "out_for_delivery",
            "parameter_list": "nama_pelanggan, resi",
            "body": "Halo {{1}}, paket {{2}} sedang diantar.",
            "active": "y",
        },
        form_url=URL + "new/",
    )
    assert resp.status_code == 302, flashes(resp.get_data(as_text=True))
    row = db.session.scalars(select(WhatsAppTemplate)).one()
    assert (row.name, row.language, row.use) == (
        "carebox_paket_diantar",
        "id",
        WhatsAppTemplateUse.OUT_FOR_DELIVERY,
    )
    assert json.loads(row.parameters) == ["nama_pelanggan", "resi"]
    page = b.get(URL).get_data(as_text=True)
    assert "carebox_paket_diantar" in page and "nama_pelanggan, resi" in page


def test_a_bad_template_is_refused_with_a_message(login_as, db):
    b, _master = login_as(perm.MASTER_ADMIN)
    for data in (
        {"name": "Bad Name!", "language": "id", "use": "desk", "parameter_list": ""},
        {"name": "ok_name", "language": "id", "use": "desk", "parameter_list": "1abc, x y"},
        {"name": "ok_name", "language": "xx", "use": "desk", "parameter_list": ""},
    ):
        resp = b.post(URL + "new/", data, form_url=URL + "new/")
        assert resp.status_code == 200  # the form again, with its message
    assert db.session.scalars(select(WhatsAppTemplate)).all() == []


def test_only_the_master_admin_manages_templates(login_as, db, client):
    for role in (perm.CUSTOMER_SERVICE, perm.ADMIN_DEPARTMENT, perm.CUSTOMER):
        b, _user = login_as(role, department="OPS" if role == perm.ADMIN_DEPARTMENT else None)
        assert b.get(URL).status_code == 403
        assert b.get(URL + "new/").status_code == 403
        assert "whatsapp-templates" not in b.get("/admin/").get_data(as_text=True)
    assert client.get(URL).status_code == 302  # anonymous: to the login page


def test_the_setting_of_before_becomes_a_template_once(app, db):
    app.config["WHATSAPP_REPLY_TEMPLATE"] = "carebox_balasan_lama"
    try:
        assert whatsapp_templates.seed_from_setting() == 2
        assert whatsapp_templates.seed_from_setting() == 0
        db.session.commit()
        found = whatsapp_templates.for_use(WhatsAppTemplateUse.REPLY, "en")
        assert (found.name, found.language, found.parameters) == (
            "carebox_balasan_lama",
            "en",
            ["nomor_tiket", "balasan"],
        )
    finally:
        app.config["WHATSAPP_REPLY_TEMPLATE"] = ""


def test_inside_the_window_the_desk_shows_the_time_left_and_no_picker(
    whatsapp, client, db, login_as
):
    ticket = customer_writes(client, db, hours_ago=2)
    add_template(db)
    b, _staff = login_as(perm.CUSTOMER_SERVICE)
    page = b.get(desk(ticket.number)).get_data(as_text=True)
    assert "sisa 21 jam" in page and 'id="wa-templates"' not in page
    assert 'id="visibility-public"' in page


def test_outside_the_window_the_desk_offers_only_the_template_picker(
    whatsapp, client, db, make, login_as
):
    ticket = customer_writes(client, db, hours_ago=30, name="Budi Santoso")
    row = add_template(db)
    b, staff = login_as(perm.CUSTOMER_SERVICE, name="Sari")
    page = b.get(desk(ticket.number)).get_data(as_text=True)
    assert 'id="wa-templates"' in page and "alert-warning" in page
    assert 'id="visibility-public"' not in page  # no free text to WhatsApp now
    assert "carebox_info_tiket (id)" in page and 'id="wa-template-form"' not in page

    page = b.get(desk(ticket.number) + f"?wa_template={row.id}").get_data(as_text=True)
    values = re.findall(r'id="wa-param-\d" value="([^"]*)"', page)
    assert values == [ticket.number, "Budi Santoso", ""]  # known fields prefilled

    resp = b.post(
        desk(ticket.number) + "whatsapp-template",
        {
            "expected_version": version_on(page),
            "template_id": str(row.id),
            "params-0": ticket.number,
            "params-1": "Budi Santoso",
            "params-2": "Paket Anda\nsudah kami cek.",
        },
        form_url=desk(ticket.number),
    )
    assert resp.status_code == 302
    (queued,) = rows()
    assert queued.kind is WhatsAppSendKind.TEMPLATE and queued.template_name == row.name
    assert send_pending().sent == 1
    (sent,) = whatsapp.sends()
    assert sent == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": SENDER,
        "type": "template",
        "template": {
            "name": "carebox_info_tiket",
            "language": {"code": "id"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": ticket.number},
                        {"type": "text", "text": "Budi Santoso"},
                        {"type": "text", "text": "Paket Anda sudah kami cek."},
                    ],
                }
            ],
        },
    }
    message = db.session.get(TicketMessage, queued.message_id)
    assert message.from_staff and message.author_id == staff.id
    assert "carebox_info_tiket" in message.body  # what the conversation shows
    rows()  # a fresh snapshot: the worker wrote on its own connection
    page = b.get(desk(ticket.number)).get_data(as_text=True)
    assert "wa-sent" in page


def test_the_approved_text_is_what_the_conversation_shows(whatsapp, client, db, login_as):
    ticket = customer_writes(client, db, hours_ago=30)
    row = add_template(db, params=("nomor_tiket",), body="Tiket {{1}} sudah kami tangani.")
    b, _staff = login_as(perm.CUSTOMER_SERVICE)
    page = b.get(desk(ticket.number) + f"?wa_template={row.id}").get_data(as_text=True)
    resp = b.post(
        desk(ticket.number) + "whatsapp-template",
        {"expected_version": version_on(page), "template_id": str(row.id), "params-0": "X1"},
        form_url=desk(ticket.number),
    )
    assert resp.status_code == 302
    (queued,) = rows()
    assert db.session.get(TicketMessage, queued.message_id).body == "Tiket X1 sudah kami tangani."


def test_free_text_outside_the_window_is_refused_and_nothing_is_queued(
    whatsapp, client, db, login_as
):
    ticket = customer_writes(client, db, hours_ago=30)
    b, _staff = login_as(perm.CUSTOMER_SERVICE)
    page = b.get(desk(ticket.number)).get_data(as_text=True)
    resp = b.post(
        desk(ticket.number) + "reply",
        {"expected_version": version_on(page), "body": "Halo", "visibility": "public"},
        form_url=desk(ticket.number),
    )
    assert resp.status_code == 422 and "template" in flashes(resp.get_data(as_text=True))
    assert rows() == []


def test_an_empty_parameter_or_unknown_template_is_refused(whatsapp, client, db, login_as):
    ticket = customer_writes(client, db, hours_ago=30)
    row = add_template(db)
    b, _staff = login_as(perm.CUSTOMER_SERVICE)
    page = b.get(desk(ticket.number) + f"?wa_template={row.id}").get_data(as_text=True)
    base = {"expected_version": version_on(page), "template_id": str(row.id)}
    resp = b.post(
        desk(ticket.number) + "whatsapp-template",
        {**base, "params-0": "A", "params-1": "B", "params-2": "   "},
        form_url=desk(ticket.number),
    )
    assert resp.status_code == 422 and "catatan" in flashes(resp.get_data(as_text=True))
    resp = b.post(
        desk(ticket.number) + "whatsapp-template",
        {**base, "template_id": "999999", "params-0": "A"},
        form_url=desk(ticket.number),
    )
    assert resp.status_code == 422
    page = b.get(desk(ticket.number) + "?wa_template=abc").get_data(as_text=True)
    assert 'id="wa-template-form"' not in page
    assert rows() == []


def test_a_department_admin_without_the_ticket_cannot_send_a_template(
    whatsapp, client, db, login_as
):
    ticket = customer_writes(client, db, hours_ago=30)
    row = add_template(db)
    b, _admin = login_as(perm.ADMIN_DEPARTMENT, department="FIN")
    resp = b.post(
        desk(ticket.number) + "whatsapp-template",
        {"expected_version": "1", "template_id": str(row.id), "params-0": "A"},
        form_url="/admin/",
    )
    assert resp.status_code in (403, 404)  # not their department's ticket
    assert rows() == []


def test_api_errors_of_a_template_send_show_on_the_desk_message(
    whatsapp, client, db, login_as, app
):
    ticket = customer_writes(client, db, hours_ago=30)
    row = add_template(db, params=("nomor_tiket",))
    b, _staff = login_as(perm.CUSTOMER_SERVICE)
    page = b.get(desk(ticket.number) + f"?wa_template={row.id}").get_data(as_text=True)
    b.post(
        desk(ticket.number) + "whatsapp-template",
        {"expected_version": version_on(page), "template_id": str(row.id), "params-0": "A"},
        form_url=desk(ticket.number),
    )
    app.config["WHATSAPP_TOKEN"] = "expired"
    assert send_pending().released == 1
    rows()
    page = b.get(desk(ticket.number)).get_data(as_text=True)
    assert "wa-pending" in page and "WHATSAPP_TOKEN" in page
    from .whatsapp.graph_server import TOKEN

    app.config["WHATSAPP_TOKEN"] = TOKEN
    (queued,) = rows()
    whatsapp.fail_next_send(131047)  # as if Meta still refused it
    from datetime import timedelta

    from backoffice.models.base import utcnow

    assert send_pending(now=utcnow() + timedelta(minutes=5)).failed == 1
    (queued,) = rows()
    assert queued.status is OutboxStatus.FAILED
    page = b.get(desk(ticket.number)).get_data(as_text=True)
    assert "wa-failed" in page and "Re-engagement message" in page
    assert db.session.scalars(select(OutboxWhatsApp)).all()


# --- staff attachments as media messages ----------------------------------------------


def reply_with_file(b, ticket, data: bytes, filename: str):
    import io

    page = b.get(desk(ticket.number)).get_data(as_text=True)
    return b.post(
        desk(ticket.number) + "reply",
        {
            "body": "Bukti terlampir.",
            "visibility": "public",
            "expected_version": version_on(page),
            "attachment": (io.BytesIO(data), filename),
        },
        form_url=desk(ticket.number),
        content_type="multipart/form-data",
    )


def test_a_staff_photo_is_uploaded_then_sent_as_an_image_by_media_id(
    whatsapp, client, db, login_as
):
    from .admin_support import PNG

    ticket = customer_writes(client, db)
    b, _staff = login_as(perm.CUSTOMER_SERVICE)
    assert reply_with_file(b, ticket, PNG, "bukti.png").status_code == 302
    text_row, media_row = rows()
    assert media_row.media_kind.value == "image" and media_row.attachment_id is not None
    assert send_pending().sent == 2
    (upload,) = whatsapp.upload_requests()
    parts = upload["form"]
    assert parts["file"]["data"] == PNG and parts["file"]["content_type"] == "image/png"
    assert parts["type"]["data"] == b"image/png"
    assert parts["messaging_product"]["data"] == b"whatsapp"
    (media_id,) = whatsapp.uploads
    text, image = whatsapp.sends()
    assert text["type"] == "text"
    assert image == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": SENDER,
        "type": "image",
        "image": {"id": media_id},
    }
    rows()
    assert "wa-sent" in b.get(desk(ticket.number)).get_data(as_text=True)
    assert send_pending().claimed == 0


def test_a_pdf_goes_as_a_document_and_a_5xx_neither_uploads_nor_sends_it_twice(
    whatsapp, client, db, login_as
):
    from datetime import timedelta

    from backoffice.models.base import utcnow

    from .portal_support import PDF

    ticket = customer_writes(client, db)
    b, _staff = login_as(perm.CUSTOMER_SERVICE)
    assert reply_with_file(b, ticket, PDF, "surat.pdf").status_code == 302
    assert send_pending(batch=1).sent == 1  # the text first
    whatsapp.fail_next_send(131000)
    assert send_pending().retried == 1
    (_text, media_row) = rows()
    assert media_row.media_id and media_row.status is OutboxStatus.PENDING
    assert send_pending(now=utcnow() + timedelta(minutes=10)).sent == 1
    assert len(whatsapp.upload_requests()) == 1  # the retry reused the upload
    documents = [s for s in whatsapp.accepted_sends() if s["type"] == "document"]
    assert documents == [
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": SENDER,
            "type": "document",
            "document": {"id": media_row.media_id, "filename": "surat.pdf"},
        }
    ]


def test_a_refused_upload_shows_on_the_attachment(whatsapp, client, db, login_as):
    from .admin_support import PNG

    ticket = customer_writes(client, db)
    b, _staff = login_as(perm.CUSTOMER_SERVICE)
    reply_with_file(b, ticket, PNG, "bukti.png")
    whatsapp.fail_next_upload(100)
    report = send_pending()
    assert (report.sent, report.failed) == (1, 1)
    rows()
    page = b.get(desk(ticket.number)).get_data(as_text=True)
    assert "wa-failed" in page and "Invalid parameter" in page
    assert [s["type"] for s in whatsapp.sends()] == ["text"]


def test_attachments_outside_the_window_are_not_sent_as_media(whatsapp, client, db, make):
    from backoffice.domain import attachments, tickets

    from .admin_support import PNG

    ticket = customer_writes(client, db, hours_ago=30)
    import io

    stored = attachments.store(io.BytesIO(PNG), "bukti.png")
    staff = make.user(perm.CUSTOMER_SERVICE)
    tickets.post_message(ticket, staff, "Lihat lampiran di portal.", attachments=[stored])
    db.session.commit()
    (row,) = rows()
    assert row.kind is WhatsAppSendKind.TEMPLATE and row.media_kind is None


def test_the_desk_with_the_picker_repeats_no_id(whatsapp, client, db, login_as):
    from .test_page_markup import duplicate_ids, required_selects_start_empty

    ticket = customer_writes(client, db, hours_ago=30)
    row = add_template(db)
    b, _staff = login_as(perm.MASTER_ADMIN)
    html = b.get(desk(ticket.number) + f"?wa_template={row.id}").get_data(as_text=True)
    assert 'id="wa-template-form"' in html
    assert duplicate_ids(html) == [] and required_selects_start_empty(html) == []
    for n in range(3):
        assert f'<label for="wa-param-{n}">' in html


def test_editing_a_template_shows_and_keeps_its_parameters(login_as, db):
    from .admin_support import form_data

    row = add_template(db, params=("nomor_tiket", "balasan"))
    b, _master = login_as(perm.MASTER_ADMIN)
    page = b.get(URL + f"edit/?id={row.id}").get_data(as_text=True)
    data = form_data(page)
    assert data["parameter_list"] == "nomor_tiket, balasan"
    data.update(parameter_list="nomor_tiket, nama_agen, balasan", use="reply")
    resp = b.post(URL + f"edit/?id={row.id}", data, form_url=URL + f"edit/?id={row.id}")
    assert resp.status_code == 302
    db.session.expire_all()
    row = db.session.get(WhatsAppTemplate, row.id)
    assert json.loads(row.parameters) == ["nomor_tiket", "nama_agen", "balasan"]
    assert row.use is WhatsAppTemplateUse.REPLY


def test_without_a_reply_template_email_still_carries_a_free_text_reply(
    whatsapp, client, db, make, app, login_as
):
    from .test_whatsapp_outbound import no_templates

    no_templates(db, app)
    add_template(db)  # a desk template, not a reply template
    phone_only = customer_writes(client, db, hours_ago=30)
    b, _staff = login_as(perm.CUSTOMER_SERVICE)
    page = b.get(desk(phone_only.number)).get_data(as_text=True)
    assert 'id="visibility-public"' not in page and 'id="wa-templates"' in page
    make.user(phone="081299998888", email="ani@example.com")
    db.session.commit()
    registered = customer_writes(client, db, hours_ago=30, sender="6281299998888")
    page = b.get(desk(registered.number)).get_data(as_text=True)
    assert 'id="visibility-public"' in page and 'id="wa-templates"' in page  # email, or a template
