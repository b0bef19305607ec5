"""A local HTTP server that speaks the WhatsApp Cloud API's documented shapes.

The Graph API cannot be reached from the tests, so this plays it: `POST
/{version}/{phone-number-id}/messages` (send: text, template, image, document),
`POST /{version}/{phone-number-id}/media` (upload, multipart: `file`, `type`,
`messaging_product` → `{"id": …}`), `GET /{version}/{media-id}` (the
media's download URL), `GET /download/{media-id}` (its bytes), all behind the
bearer token, and Graph error objects (`{"error": {"message", "type", "code",
"error_data", "fbtrace_id"}}`) for whatever a test scripts: a closed window
(131047), rate limits (429 / 130429), Meta's trouble (500), a bad token (190).

It records every request (method, path, headers, JSON body), so tests assert
on what carebox really sent. Nothing of carebox's own code is replaced.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = "v21.0"
PHONE_NUMBER_ID = "106540352242922"
TOKEN = "EAAtest-token"  # noqa: S105

ERRORS = {
    # Shapes from Meta's "Error codes" page (Cloud API).
    131047: (
        400,
        "Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer "
        "last replied to this number.",
    ),
    130429: (429, "Rate limit hit", "Cloud API message throughput has been reached."),
    131000: (500, "Something went wrong", "Message failed to send due to an unknown error."),
    190: (401, "Invalid OAuth access token - Cannot parse access token", None),
    100: (400, "Invalid parameter", "Parameter value is not valid"),
}


def graph_error(code: int) -> tuple[int, dict]:
    status, message, details = ERRORS[code]
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf123"}
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return status, {"error": error}


class FakeGraph:
    """Start with `with FakeGraph() as graph:`; `graph.base` is WHATSAPP_API_BASE."""

    def __init__(self, token: str = TOKEN):
        self.token = token
        self.requests: list[dict] = []
        self.media: dict[str, tuple[str, bytes]] = {}
        self.send_script: deque = deque()  # (status, body, headers) for the next sends
        self.media_script: deque = deque()
        self.upload_script: deque = deque()  # (status, body) for the next uploads
        self.uploads: dict[str, dict] = {}  # media id -> the parts carebox uploaded
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}/{VERSION}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    # --- scripting -------------------------------------------------------
    def fail_next_send(self, code: int, times: int = 1, retry_after: str | None = None):
        status, body = graph_error(code)
        headers = {"Retry-After": retry_after} if retry_after else {}
        for _ in range(times):
            self.send_script.append((status, body, headers))

    def add_media(self, media_id: str, mime: str, data: bytes):
        self.media[media_id] = (mime, data)

    def fail_next_upload(self, code: int, times: int = 1):
        for _ in range(times):
            self.upload_script.append(graph_error(code))

    def _is_send(self, r) -> bool:
        return r["method"] == "POST" and r["path"].endswith("/messages")

    def sends(self) -> list[dict]:
        return [r["json"] for r in self.requests if self._is_send(r)]

    def accepted_sends(self) -> list[dict]:
        return [r["json"] for r in self.requests if self._is_send(r) and r["status"] == 200]

    def upload_requests(self) -> list[dict]:
        return [r for r in self.requests if r["method"] == "POST" and r["path"].endswith("/media")]

    # --- the server --------------------------------------------------------
    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status: int, body, headers=None, content_type="application/json"):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
                return status

            def _record(self, body=None):
                entry = {
                    "method": self.command,
                    "path": self.path,
                    "headers": dict(self.headers),
                    "json": body,
                    "status": None,
                }
                with fake._lock:
                    fake.requests.append(entry)
                return entry

            def _authorised(self) -> bool:
                return self.headers.get("Authorization") == f"Bearer {fake.token}"

            def _upload(self, raw: bytes, entry: dict):
                from email.parser import BytesParser
                from email.policy import HTTP

                head = f"Content-Type: {self.headers.get('Content-Type', '')}\r\n\r\n"
                message = BytesParser(policy=HTTP).parsebytes(head.encode() + raw)
                parts = {}
                for part in message.iter_parts() if message.is_multipart() else []:
                    name = part.get_param("name", header="content-disposition")
                    parts[name] = {
                        "filename": part.get_filename(),
                        "content_type": part.get_content_type(),
                        "data": part.get_payload(decode=True),
                    }
                entry["form"] = parts
                if fake.upload_script:
                    entry["status"] = self._answer(*fake.upload_script.popleft())
                    return
                if (
                    "file" not in parts
                    or (parts.get("messaging_product") or {}).get("data") != b"whatsapp"
                    or not (parts.get("type") or {}).get("data")
                ):
                    entry["status"] = self._answer(*graph_error(100))
                    return
                media_id = f"{next(fake._ids) + 900000000000000}"
                fake.uploads[media_id] = parts
                entry["status"] = self._answer(200, {"id": media_id})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path == f"/{VERSION}/{PHONE_NUMBER_ID}/media":
                    entry = self._record(None)
                    if not self._authorised():
                        entry["status"] = self._answer(*graph_error(190))
                        return
                    self._upload(raw, entry)
                    return
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                entry = self._record(body)
                if not self._authorised():
                    entry["status"] = self._answer(*graph_error(190))
                    return
                if self.path != f"/{VERSION}/{PHONE_NUMBER_ID}/messages":
                    entry["status"] = self._answer(*graph_error(100))
                    return
                if fake.send_script:
                    status, answer, headers = fake.send_script.popleft()
                    entry["status"] = self._answer(status, answer, headers)
                    return
                ok = (
                    isinstance(body, dict)
                    and body.get("messaging_product") == "whatsapp"
                    and body.get("type") in ("text", "template", "image", "document")
                    and isinstance(body.get("to"), str)
                    and body["to"].isdigit()
                )
                if ok and body["type"] in ("image", "document"):
                    media = body.get(body["type"])
                    ok = isinstance(media, dict) and media.get("id") in fake.uploads
                if not ok:
                    entry["status"] = self._answer(*graph_error(100))
                    return
                wamid = f"wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEj{next(fake._ids):06d}"
                entry["status"] = self._answer(
                    200,
                    {
                        "messaging_product": "whatsapp",
                        "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                        "messages": [{"id": wamid}],
                    },
                )

            def do_GET(self):
                entry = self._record()
                if not self._authorised():
                    entry["status"] = self._answer(*graph_error(190))
                    return
                path = self.path.split("?")[0]
                if path.startswith("/download/"):
                    media_id = path.removeprefix("/download/")
                    if media_id not in fake.media:
                        entry["status"] = self._answer(404, b"", content_type="text/plain")
                        return
                    mime, data = fake.media[media_id]
                    entry["status"] = self._answer(200, data, content_type=mime)
                    return
                media_id = path.removeprefix(f"/{VERSION}/")
                if fake.media_script:
                    status, answer = fake.media_script.popleft()
                    entry["status"] = self._answer(status, answer)
                    return
                if media_id not in fake.media:
                    entry["status"] = self._answer(*graph_error(100))
                    return
                mime, data = fake.media[media_id]
                entry["status"] = self._answer(
                    200,
                    {
                        "messaging_product": "whatsapp",
                        "url": f"http://127.0.0.1:{fake.port}/download/{media_id}?ext=1&hash=abc",
                        "mime_type": mime,
                        "sha256": "0" * 64,
                        "file_size": len(data),
                        "id": media_id,
                    },
                )

        return Handler
