"""Ticket attachments: type checked by content, stored outside the static folder.

Files live under UPLOAD_FOLDER with a random name; the database row keeps the
original name. They are only ever sent by `send`, after the caller checked
that the user may see the ticket.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
import secrets
import unicodedata
from pathlib import Path
from typing import BinaryIO

from flask import current_app, send_file
from flask_babel import gettext as _

from ..models import TicketAttachment
from . import DomainError

# Content signatures: the file's own bytes decide its type, never its name.
SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"%PDF-", "application/pdf", ".pdf"),
)


def sniff(head: bytes) -> tuple[str, str] | None:
    for magic, content_type, ext in SIGNATURES:
        if head.startswith(magic):
            return content_type, ext
    return None


def _safe_name(name: str, ext: str) -> str:
    name = unicodedata.normalize("NFKC", os.path.basename(name or "")).strip()
    name = re.sub(r"[^\w.\- ]+", "_", name)[:150].strip("._ ") or "attachment"
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return f"{stem}{ext}"


def _folder() -> Path:
    folder = Path(current_app.config["UPLOAD_FOLDER"])
    folder.mkdir(parents=True, exist_ok=True)
    return folder


_written: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "attachments_written", default=None
)


@contextlib.contextmanager
def removed_on_error():
    """Files stored inside the block are deleted again if the block raises.

    For callers whose transaction may roll back after files were written (inbound
    mail): a rolled-back message leaves no file behind.
    """
    keys: list[str] = []
    token = _written.set(keys)
    try:
        yield keys
    except BaseException:
        for key in keys:
            with contextlib.suppress(OSError):
                (_folder() / key).unlink(missing_ok=True)
        raise
    finally:
        _written.reset(token)


def store(stream: BinaryIO, filename: str) -> TicketAttachment:
    """Check and store an upload; returns an unsaved TicketAttachment for the lifecycle.

    Raises DomainError for an empty, oversized or disallowed file (JPEG, PNG, PDF only).
    """
    limit = current_app.config["ATTACHMENT_MAX_BYTES"]
    data = stream.read(limit + 1)
    if not data:
        raise DomainError(_("The attached file is empty."))
    if len(data) > limit:
        raise DomainError(_("The attached file is larger than %(mb)d MB.", mb=limit // 2**20))
    kind = sniff(data[:16])
    if kind is None:
        raise DomainError(_("Only JPEG, PNG and PDF files can be attached."))
    content_type, ext = kind
    key = secrets.token_hex(16) + ext
    (_folder() / key).write_bytes(data)
    if (written := _written.get()) is not None:
        written.append(key)
    return TicketAttachment(
        filename=_safe_name(filename, ext),
        content_type=content_type,
        size=len(data),
        storage_key=key,
    )


def is_image(attachment: TicketAttachment) -> bool:
    """Whether the conversation shows `attachment` as a picture (JPEG, PNG)."""
    return attachment.content_type in ("image/jpeg", "image/png")


def send(attachment: TicketAttachment):
    """The file as a response: images inline, PDFs as a download; never sniffed as HTML."""
    path = _folder() / attachment.storage_key
    if not path.is_file():
        from flask import abort

        abort(404)
    resp = send_file(
        path,
        mimetype=attachment.content_type,
        as_attachment=attachment.content_type == "application/pdf",
        download_name=attachment.filename,
        max_age=0,
        conditional=True,
    )
    resp.headers["Cache-Control"] = "private, no-store"
    resp.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return resp
