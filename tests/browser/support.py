"""What the browser tests share besides fixtures: accounts, signing in and out, a photo."""

from __future__ import annotations

import re
import struct
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Page, expect

from backoffice.domain import permissions as perm

PASSWORD = "browser-pass-2026"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
TICKET_NUMBER = re.compile(r"[A-Z]{2,4}-\d{4}-\d{6,10}")


@dataclass(frozen=True)
class Account:
    email: str
    password: str
    role: str
    name: str
    department: str | None = None


STAFF = {
    "master": Account("master@browser.example", PASSWORD, perm.MASTER_ADMIN, "Maya Master"),
    "cs": Account("cs@browser.example", PASSWORD, perm.CUSTOMER_SERVICE, "Citra Service"),
    "ops": Account(
        "ops@browser.example", PASSWORD, perm.ADMIN_DEPARTMENT, "Oki Operasional", "OPS"
    ),
    "csdept": Account(
        "csdept@browser.example", PASSWORD, perm.ADMIN_DEPARTMENT, "Dina Layanan", "CS"
    ),
}


def unique_email(prefix: str = "customer") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@browser.example"


def log_in(page: Page, email: str, password: str = PASSWORD) -> None:
    """Sign in through the login form, as a person does, and wait until it has landed."""
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    page.wait_for_load_state()  # the page's scripts too: menus and forms work only then


def log_out(page: Page) -> None:
    """Press the logout button (a POST form with its CSRF token); the session is gone."""
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("link", name="Log in")).to_be_visible()
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)


def make_customer(live_server, name: str = "Budi Pelanggan") -> Account:
    """A customer account made in the database, for tests about something else than
    registering (the journey registers through the form)."""
    from backoffice.extensions import db
    from backoffice.seed import ensure_user

    email = unique_email()
    with live_server.app_context():
        ensure_user(email, PASSWORD, perm.CUSTOMER, name=name).locale = "en"
        db.session.commit()
        db.session.remove()
    return Account(email, PASSWORD, perm.CUSTOMER, name)


def write_png(path: Path, width: int = 48, height: int = 32) -> Path:
    """A small real PNG (an orange box, as a photo of a parcel would be)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes((230, 140, 40)) * width
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )
    path.write_bytes(png)
    return path
