"""Shared bits of the portal tests: small real files, and reading pages."""

from __future__ import annotations

import io
import re
import struct
import zlib
from html import unescape

from backoffice.domain import permissions as perm


def png_bytes() -> bytes:
    """A real 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


def upload(data: bytes, name: str):
    return (io.BytesIO(data), name)


def encoded_form(fields: dict) -> dict:
    """A multipart body encoded in memory: the test client spools big bodies to a temporary
    file that stays open when the app refuses to read it (413)."""
    from werkzeug.datastructures import FileStorage
    from werkzeug.test import encode_multipart

    values = {
        k: FileStorage(stream=v[0], filename=v[1]) if isinstance(v, tuple) else v
        for k, v in fields.items()
    }
    boundary, body = encode_multipart(values)
    return {"data": body, "content_type": f"multipart/form-data; boundary={boundary}"}


def text(resp) -> str:
    return unescape(resp.get_data(as_text=True))


def field_error(resp, field: str) -> str:
    """The error text shown right under the form field `field` ('' when none)."""
    html = resp.get_data(as_text=True)
    match = re.search(rf'id="{re.escape(field)}-errors">(.*?)</div>\s*</div>', html, re.S)
    return unescape(re.sub(r"<[^>]+>", " ", match.group(1))).strip() if match else ""


def customer(login_as, locale: str = "en", **fields):
    """A signed-in customer. English by default, so that tests can read the messages
    whatever the Indonesian catalogue says; tests of Indonesian pass locale="id"."""
    return login_as(perm.CUSTOMER, locale=locale, **fields)
