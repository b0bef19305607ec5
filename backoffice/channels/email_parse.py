"""Reading an inbound email: who wrote it, what they wrote (without the quoted history), its files.

`parse(raw)` never raises for a malformed message: broken MIME, unknown or lying
charsets, raw 8-bit headers all give the best text that can be had (Python's
`email` package with `policy.default` decodes RFC 2047 words and records defects
instead of failing; bodies are decoded by their declared charset, then UTF-8, then
charset-normalizer's guess).

The body: the `text/plain` alternative when there is one; an HTML-only mail is
turned into text by inscriptis (a maintained HTML-to-text library that keeps the
layout of lists and tables) after the quoted-history containers of the common
clients are removed. Quoted history and signatures are then cut by
mail-parser-reply (Gmail, Outlook, Apple Mail, Thunderbird headers in many
languages); it has no Indonesian, which is added to its language table here
(`_INDONESIAN`), the one piece of our own.

Attachments (and inline images) become `IncomingFile`s; their checks and limits are
`domain.attachments`' (through `domain.inbound.receive`), not this module's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr

from mailparser_reply import EmailReplyParser
from mailparser_reply.constants import MAIL_LANGUAGES, QUOTED_MATCH_INCLUDE

from ..domain.inbound import IncomingFile

MAX_PARTS = 200  # MIME parts looked at in one message (a crafted mail may nest thousands)
MAX_TEXT = 200_000  # characters of body text parsed for replies (the rest is never the reply)

# Indonesian, as Gmail, Outlook and Apple Mail write it in an Indonesian locale:
#   "Pada tanggal Sen, 1 Des 2026 pukul 10.00 carebox <…> menulis:"  (Gmail)
#   "Pada 1 Des 2026, pukul 10.00, carebox <…> menulis:"             (Apple Mail)
#   "Dari: … / Dikirim: … / Kepada: … / Subjek: …"                   (Outlook)
_INDONESIAN = {
    "wrote_header": r"^(" + QUOTED_MATCH_INCLUDE + r"Pada\s(?:.+?\s?.+?)\s?menulis\s?:)$",
    "from_header": r"((?:(?:^|\n|\n"
    + QUOTED_MATCH_INCLUDE
    + r")[* ]*(?:Dari|Dikirim|Kepada|Subjek|Perihal|Tanggal|Cc|Tembusan):[ *]*(?:\s{,2}).*)"
    r"{2,}(?:\n.*){,1})",
    "disclaimers": [r"(?:PERHATIAN|Penafian|Pemberitahuan):"],
    "signatures": [
        "Salam,",
        "Hormat saya,",
        "Hormat kami,",
        "Terima kasih,",
        "Terimakasih,",
        "Salam hangat,",
    ],
    "sent_from": "Dikirim dari|Kirim dari|Sent from my|Get Outlook for",
}
MAIL_LANGUAGES.setdefault("id", _INDONESIAN)
_REPLY_PARSER = EmailReplyParser(languages=["id", "en", "de", "nl", "fr", "es"])

# Quoted history in HTML mail: Gmail, Outlook (desktop and web), Apple Mail,
# Thunderbird, Yahoo. Everything from the first of these on is history.
_HTML_QUOTE_XPATH = (
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' gmail_quote ')]"
    " | //*[@id='divRplyFwdMsg'] | //*[@id='appendonsend']"
    " | //*[@id='mail-editor-reference-message-container']"
    " | //blockquote[@type='cite'] | //*[contains(@class, 'moz-cite-prefix')]"
    " | //*[@id='yahoo_quoted'] | //*[contains(@class, 'yahoo_quoted')]"
)
_FORWARD = re.compile(r"^\s*(fwd?|tr|wg|penerusan|terusan)\s*:", re.IGNORECASE)
# Charsets mail clients declare under names Python does not know.
_CHARSET_ALIASES = {
    "windows-874": "cp874",
    "iso-8859-8-i": "iso-8859-8",
    "x-user-defined": "latin-1",
    "gb2312": "gb18030",  # GB 18030 is a superset; senders mislabel it often
    "gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "x-mac-roman": "mac-roman",
}


@dataclass
class ParsedMail:
    message_id: str | None
    sender: str  # From's address, lower case ("" when there is none)
    name: str  # From's display name
    subject: str
    text: str  # the new part of the body, history and signature cut
    files: list[IncomingFile] = field(default_factory=list)
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)  # To, Cc, Delivered-To, X-Original-To
    message: Message | None = None  # for the loop and authenticity checks
    defects: int = 0


def _unsurrogate(value: str) -> str:
    """Raw 8-bit header bytes come through as surrogates: read them as UTF-8 (else Latin-1)."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    data = value.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def header(msg: Message, name: str) -> str:
    """One header as text, RFC 2047 decoded; "" when absent or unreadable."""
    try:
        value = msg.get(name)
    except Exception:  # noqa: BLE001 (a malformed header is as good as none)
        return ""
    if value is None:
        return ""
    return " ".join(_unsurrogate(str(value)).split())


def headers(msg: Message, name: str) -> list[str]:
    try:
        values = msg.get_all(name) or []
    except Exception:  # noqa: BLE001
        return []
    return [" ".join(_unsurrogate(str(v)).split()) for v in values]


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Text of a body part: its declared charset, else UTF-8, else the best guess."""
    tried = []
    if charset:
        name = charset.strip().strip('"').lower()
        tried.append(_CHARSET_ALIASES.get(name, name))
    tried.append("utf-8")
    for name in tried:
        try:
            return data.decode(name)
        except (LookupError, UnicodeDecodeError):
            continue
    if len(data) >= 200:  # enough text for a guess to be better than a default
        from charset_normalizer import from_bytes

        best = from_bytes(data).best()
        if best is not None:
            return str(best)
    # Short 8-bit text that is not UTF-8: Windows-1252, what unlabelled mail mostly is.
    return data.decode("cp1252", "replace")


def _part_text(part: Message) -> str:
    try:
        data = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001 (broken transfer encoding: take it as it is)
        data = None
    if data is None:
        payload = part.get_payload()
        if not isinstance(payload, str):
            return ""
        data = payload.encode("utf-8", "surrogateescape")
    try:
        charset = part.get_content_charset()
    except Exception:  # noqa: BLE001
        charset = None
    return decode_bytes(data, charset)


def html_to_text(html: str) -> str:
    """The new part of an HTML mail as text (quoted history removed first)."""
    from inscriptis import get_text
    from lxml import etree
    from lxml import html as lxml_html

    try:
        tree = lxml_html.fromstring(html)
    except (etree.ParserError, ValueError):
        return get_text(html)
    for node in tree.xpath(_HTML_QUOTE_XPATH):
        parent = node.getparent()
        if parent is None:
            continue
        # The history container and everything after it at its level.
        for sibling in list(node.itersiblings()):
            parent.remove(sibling)
        parent.remove(node)
    for node in tree.xpath("//script | //style | //head"):
        node.getparent().remove(node)
    return get_text(lxml_html.tostring(tree, encoding="unicode"))


def _is_file(part: Message, maintype: str) -> bool:
    disposition = (part.get_content_disposition() or "").lower()
    if disposition == "attachment":
        return True
    if maintype in ("image", "application", "audio", "video"):
        return True
    return bool(part.get_filename()) and maintype != "text"


def _filename(part: Message, index: int, ctype: str) -> str:
    try:
        name = part.get_filename()
    except Exception:  # noqa: BLE001
        name = None
    name = _unsurrogate(name or "").strip()
    if not name:
        ext = {"image/png": ".png", "image/jpeg": ".jpg", "application/pdf": ".pdf"}
        name = f"attachment-{index}{ext.get(ctype, '')}"
    return name


def _walk(msg: Message):
    for count, part in enumerate(msg.walk()):
        if count >= MAX_PARTS:
            return
        yield part


def body_and_files(msg: Message) -> tuple[str, list[IncomingFile]]:
    """The body text (plain preferred, HTML converted) and the attached files."""
    plain = html = broken = None
    files: list[IncomingFile] = []
    for part in _walk(msg):
        if part.is_multipart():
            continue
        # Read once: Python's policy.default parses the header again on every call.
        ctype = part.get_content_type()
        maintype = ctype.partition("/")[0]
        if maintype == "multipart":
            # A multipart whose boundary never comes: its whole body is one text.
            broken = broken if broken is not None else _part_text(part)
            continue
        if ctype == "message/delivery-status":
            continue
        if _is_file(part, maintype):
            try:
                data = part.get_payload(decode=True) or b""
            except Exception:  # noqa: BLE001
                data = b""
            files.append(IncomingFile(_filename(part, len(files) + 1, ctype), data))
        elif ctype == "text/plain" and plain is None:
            plain = _part_text(part)
        elif ctype == "text/html" and html is None:
            html = _part_text(part)
    if plain is not None and plain.strip():
        return plain, files
    if html is not None:
        return html_to_text(html[: MAX_TEXT * 5]), files
    return plain or broken or "", files


def strip_reply(text: str) -> str:
    """The sender's new words: quoted history and signature cut (mail-parser-reply)."""
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n")[:MAX_TEXT]
    # Gmail wraps a long "On … wrote:" / "Pada … menulis:" line in plain text; join it,
    # so the header pattern (one line) sees it.
    text = re.sub(
        r"^((?:On|Pada)\s[^\n]{10,300})\n([^\n]{0,120}(?:wrote|menulis)\s?:)$",
        r"\1 \2",
        text,
        flags=re.MULTILINE,
    )
    try:
        reply = _REPLY_PARSER.read(text)
    except Exception:  # noqa: BLE001 (a parser failure must not lose the mail)
        return text.strip()
    if not reply.replies:
        return text.strip()
    first = reply.replies[0]
    body = first.body.strip()
    if not body:
        # Nothing above the history (the reply was written below the quote, or it is
        # all quoted): keep the unquoted lines rather than nothing.
        body = "\n".join(
            line for line in text.split("\n") if not line.lstrip().startswith(">")
        ).strip()
    return body


def addresses(values) -> list[tuple[str, str]]:
    try:
        return [(n, a.lower()) for n, a in getaddresses(list(values)) if a and "@" in a]
    except Exception:  # noqa: BLE001
        return []


def parse(raw: bytes) -> ParsedMail:
    """Everything carebox reads from one raw message (see the module's docstring)."""
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    from_value = header(msg, "From")
    name, sender = parseaddr(from_value)
    sender = sender.lower() if "@" in sender else ""
    body, files = body_and_files(msg)
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    recipients = []
    for key in ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To"):
        recipients += headers(msg, key)
    subject = header(msg, "Subject")
    # A forward is sent for what it forwards: keep it whole (only our own rule).
    text = body.strip() if _FORWARD.match(subject) else strip_reply(body)
    defects = len(getattr(msg, "defects", []))
    if isinstance(msg, EmailMessage):
        defects += sum(len(p.defects) for p in _walk(msg))
    return ParsedMail(
        message_id=(header(msg, "Message-ID") or None),
        sender=sender,
        name=" ".join(name.split())[:120],
        subject=subject,
        text=text[:MAX_TEXT],
        files=files,
        in_reply_to=re.findall(r"<[^<>\s]+>", header(msg, "In-Reply-To")),
        references=re.findall(r"<[^<>\s]+>", header(msg, "References")),
        recipients=recipients,
        message=msg,
        defects=defects,
    )
