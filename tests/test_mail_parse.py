"""Reading inbound mail (backoffice/channels/email_parse.py) on the corpus in tests/mail/.

Each corpus file is shaped like what the named client really sends (headers, MIME
layout, transfer encodings, quoting style); the expected text is what the customer
typed, without the quoted history and the signature.
"""

from __future__ import annotations

import pytest

from backoffice.channels.email_parse import decode_bytes, html_to_text, parse, strip_reply

from .mail_support import CORPUS

FILL = {
    "FROM": "Cust@Example.NET",
    "REPLY": "reply+1-aaaaaaaaaaaaaaaaaaaa@reply.carebox.example",
    "ROOT": "<ticket-1-aaaaaaaaaaaaaaaaaaaa@reply.carebox.example>",
    "NUMBER": "CX-0001",
    "MID": "<m1@mail.example.net>",
}


def read(name: str):
    data = (CORPUS / name).read_bytes()
    for key, value in FILL.items():
        data = data.replace(b"{" + key.encode() + b"}", value.encode())
    return parse(b"\r\n".join(data.splitlines()) + b"\r\n")


REPLIES = [
    (
        "gmail_reply_en.eml",
        "Hi, the parcel arrived today but the box is crushed \u2014 the phone inside is fine.\n"
        "Can I still claim the insurance?\n\nBudi",
    ),
    ("gmail_reply_id.eml", "Sudah sampai, terima kasih banyak atas bantuannya \U0001f64f"),
    (
        "outlook_reply_en.eml",
        "I\u2019ve attached nothing, just confirming the address: Jl. Merdeka 10, Bandung.",
    ),
    ("outlook_reply_id.eml", "Mohon dikirim ulang ke alamat kantor saja."),
    ("apple_mail_id.eml", "Baik, saya ambil sendiri di gudang Cakung besok pagi."),
    ("apple_mail_en.eml", "Thanks, that works for me.\n\nDewi"),
    ("thunderbird_reply.eml", "Please pick it up after 2 pm, nobody is home in the morning."),
    (
        "html_only.eml",
        "Nomor resi saya CB123456785ID, tujuan Surabaya.\n\n* Berat: 2 kg\n* Isi: sepatu",
    ),
    ("broken_mime.eml", "Paket saya hilang, resi CB123456785ID.\nMohon segera dibantu."),
    (
        "odd_charsets.eml",
        "Kardusnya penyok \u2014 isinya keramik, sebagian pecah. Harga Rp 1.500.000 \u00b7 "
        "mohon ganti rugi.",
    ),
]


@pytest.mark.parametrize(("name", "expected"), REPLIES, ids=[n for n, _ in REPLIES])
def test_the_reply_is_what_the_customer_typed(name, expected):
    mail = read(name)
    assert mail.text == expected
    assert mail.sender == "cust@example.net"  # lower case, for matching the customer
    assert mail.message_id == "<m1@mail.example.net>"


@pytest.mark.parametrize("name", [n for n, _ in REPLIES if n != "broken_mime.eml"])
def test_replies_name_their_thread(name):
    mail = read(name)
    if name == "odd_charsets.eml":
        return
    assert FILL["ROOT"] in mail.in_reply_to + mail.references
    assert any(FILL["REPLY"] in value for value in mail.recipients)


def test_a_forward_keeps_what_it_forwards():
    mail = read("forwarded.eml")
    assert mail.text.startswith("Tolong dicek, saya dapat SMS ini tapi paket belum datang.")
    assert mail.text.endswith("Paket CB123456785ID telah diterima oleh: SATPAM.")


def test_encoded_headers_and_raw_8bit_headers_are_decoded():
    mail = read("odd_charsets.eml")
    assert mail.subject == "Kiriman ke Denpasar \u2014 rusak"  # raw UTF-8 in the header
    assert mail.name == "Wayan Sudarsana \u2013 Bali"  # RFC 2047, windows-1252
    pdf = read("with_pdf.eml")
    assert pdf.subject == "Bukti pembayaran \u2013 Resi"  # RFC 2047 base64
    assert pdf.name == "Bambang Susilo"


def test_attachments_and_inline_images_become_files():
    pdf = read("with_pdf.eml")
    assert pdf.text == "Terlampir bukti pembayaran \u2013 mohon diproses."
    assert [f.filename for f in pdf.files] == [
        "Bukti pembayaran \u2013 resi.pdf",  # RFC 2231 file name
        "invoice.pdf.exe",
    ]
    assert pdf.files[0].data.startswith(b"%PDF-") and pdf.files[1].data.startswith(b"MZ")
    inline = read("inline_image.eml")
    assert inline.text == "Ini fotonya:\n[image: kardus.png]"
    [image] = inline.files
    assert image.filename == "kardus.png" and image.data.startswith(b"\x89PNG")


LONG_RU = (
    "\u0417\u0434\u0440\u0430\u0432\u0441\u0442\u0432\u0443\u0439\u0442\u0435, "
    "\u043f\u043e\u0441\u044b\u043b\u043a\u0430 \u0434\u043e \u0441\u0438\u0445 "
    "\u043f\u043e\u0440 \u043d\u0435 \u043f\u0440\u0438\u0448\u043b\u0430. "
) * 6


@pytest.mark.parametrize(
    ("data", "charset", "expected"),
    [
        (
            "\u0e02\u0e2d\u0e1a\u0e04\u0e38\u0e13".encode("cp874"),
            "windows-874",
            "\u0e02\u0e2d\u0e1a\u0e04\u0e38\u0e13",
        ),
        ("\uc548\ub155".encode("cp949"), "ks_c_5601-1987", "\uc548\ub155"),
        ("\u4f60\u597d".encode("gb18030"), "GB2312", "\u4f60\u597d"),
        ("Bandung \u2013 ok".encode(), "us-ascii", "Bandung \u2013 ok"),  # mislabelled UTF-8
        ("caf\u00e9".encode(), "x-no-such-charset", "caf\u00e9"),
        ("Jalan Kemang \u00bd".encode("latin-1"), None, "Jalan Kemang \u00bd"),
        (LONG_RU.encode("koi8-r"), "x-unknown", LONG_RU),  # long enough to guess
    ],
    ids=[
        "windows-874",
        "ks_c_5601",
        "gb2312",
        "lying-ascii",
        "unknown",
        "latin1-unlabelled",
        "guessed",
    ],
)
def test_bodies_in_odd_charsets(data, charset, expected):
    assert decode_bytes(data, charset) == expected


def test_html_to_text_drops_the_quoted_history_of_each_client():
    html = (
        "<div>New words</div><div class='gmail_quote'>On … wrote:<blockquote>old</blockquote>"
        "</div><p>after the quote</p>"
    )
    assert html_to_text(html).strip() == "New words"
    assert html_to_text("<p>A</p><blockquote type='cite'>old</blockquote>").strip() == "A"
    assert html_to_text("<p>B</p><div class='moz-cite-prefix'>On …</div><p>x</p>").strip() == "B"
    assert html_to_text("<script>alert(1)</script><p>C &amp; D</p>").strip() == "C & D"


def test_indonesian_quote_headers_and_signatures():
    text = (
        "Oke, saya tunggu.\n\nDikirim dari Yahoo Mail di Android\n\n"
        "Pada Sen, 30 Nov 2026 pada 9:02, carebox <reply+x@y> menulis:\n> lama"
    )
    assert strip_reply(text) == "Oke, saya tunggu."
    assert (
        strip_reply("Siap.\n\nPada tanggal Sel, 1 Des 2026 pukul 08.00 A <a@b>\nmenulis:\n> x")
        == "Siap."
    )


def test_garbage_never_raises():
    for raw in (
        b"",
        b"\x00\xff\xfe",
        b"Content-Type: multipart/mixed\r\n\r\n--",
        b"From: <<<\r\n\r\nx",
    ):
        mail = parse(raw)
        assert isinstance(mail.text, str)
