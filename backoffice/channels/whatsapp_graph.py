"""The WhatsApp Business Cloud API (Meta's Graph API), as far as carebox uses it.

Four calls: send a message (`POST /{phone-number-id}/messages`), upload a file
for a media message (`POST /{phone-number-id}/media`, multipart → a media id),
look up a media id (`GET /{media-id}` → a short-lived download URL), download
it (the URL, with the same bearer token). `WHATSAPP_API_BASE` is the Graph API's address with
its version (tests point it at a local server speaking the same shapes).

Errors come back as Graph error objects (`{"error": {"code": …, "message": …}}`);
`GraphError` keeps the code, so callers decide: a closed 24-hour window
(131047), a rate limit (429, 130429, 131056, 80007), Meta's own trouble (5xx,
code 1, 2, 131000, 131016), or a refusal that will not change (other 4xx).
`GraphUnavailable` means carebox cannot use the API at all right now (network,
an invalid or expired token): nothing is the message's fault.
"""

from __future__ import annotations

from dataclasses import dataclass

import requests
from flask import current_app

RATE_LIMITED = {4, 80007, 130429, 131048, 131056}
META_TROUBLE = {1, 2, 131000, 131016, 133004}
REENGAGEMENT = 131047  # more than 24 hours since the customer wrote: only templates
TOKEN_CODES = {190}  # the access token is invalid or expired


class GraphUnavailable(Exception):
    """The Graph API cannot be reached, or refuses carebox's token."""


class GraphError(Exception):
    """The Graph API answered with an error about this request."""

    def __init__(self, status: int, code: int | None, message: str, retry_after: float | None):
        super().__init__(f"{code if code is not None else status}: {message}")
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after

    @property
    def transient(self) -> bool:
        """Worth trying again later (rate limits, Meta's own errors, 5xx)."""
        return self.status >= 500 or self.status == 429 or self.code in RATE_LIMITED | META_TROUBLE


@dataclass
class Media:
    url: str
    mime_type: str
    size: int | None


def _error(resp: requests.Response) -> Exception:
    try:
        body = resp.json().get("error") or {}
    except (ValueError, AttributeError):
        body = {}
    if not isinstance(body, dict):
        body = {}
    code = body.get("code")
    code = code if isinstance(code, int) else None
    details = (body.get("error_data") or {}) if isinstance(body.get("error_data"), dict) else {}
    message = " — ".join(
        str(part)[:500] for part in (body.get("message"), details.get("details")) if part
    ) or (resp.reason or f"HTTP {resp.status_code}")
    if resp.status_code == 401 or code in TOKEN_CODES:
        return GraphUnavailable(f"the Graph API refused WHATSAPP_TOKEN: {message}")
    retry = resp.headers.get("Retry-After")
    try:
        retry_after = float(retry) if retry else None
    except ValueError:
        retry_after = None
    return GraphError(resp.status_code, code, message, retry_after)


class GraphAPI:
    """One HTTP session to the Graph API with carebox's token."""

    def __init__(self, config=None):
        config = config or current_app.config
        self.base = config["WHATSAPP_API_BASE"].rstrip("/")
        self.phone_number_id = config["WHATSAPP_PHONE_NUMBER_ID"]
        self.timeout = float(config.get("WHATSAPP_TIMEOUT") or 10)
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {config['WHATSAPP_TOKEN']}"

    def _request(self, method: str, url: str, **kw) -> requests.Response:
        try:
            resp = self.session.request(method, url, timeout=self.timeout, **kw)
        except requests.RequestException as exc:
            raise GraphUnavailable(f"{method} {url.split('?')[0]}: {exc}") from exc
        if resp.status_code >= 400:
            raise _error(resp)
        return resp

    def send(self, payload: dict) -> str:
        """Send one message; returns the WhatsApp message id (`wamid.…`)."""
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", **payload}
        resp = self._request("POST", f"{self.base}/{self.phone_number_id}/messages", json=body)
        try:
            return str(resp.json()["messages"][0]["id"])
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise GraphError(resp.status_code, None, "no message id in the answer", None) from exc

    def upload(self, data: bytes, mime_type: str, filename: str) -> str:
        """Upload a file for a media message; returns its media id."""
        resp = self._request(
            "POST",
            f"{self.base}/{self.phone_number_id}/media",
            data={"messaging_product": "whatsapp", "type": mime_type},
            files={"file": (filename, data, mime_type)},
        )
        try:
            return str(resp.json()["id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise GraphError(resp.status_code, None, "no media id in the answer", None) from exc

    def media(self, media_id: str) -> Media:
        """Where to download a media id the webhook named."""
        resp = self._request("GET", f"{self.base}/{requests.utils.quote(media_id, safe='')}")
        try:
            data = resp.json()
            size = data.get("file_size")
            return Media(str(data["url"]), str(data.get("mime_type") or ""), int(size or 0) or None)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise GraphError(resp.status_code, None, "no media URL in the answer", None) from exc

    def download(self, url: str, limit: int) -> bytes | None:
        """The media's bytes; None when it is larger than `limit` (read no further)."""
        resp = self._request("GET", url, stream=True)
        try:
            data = bytearray()
            for chunk in resp.iter_content(64 * 1024):
                data += chunk
                if len(data) > limit:
                    return None
            return bytes(data)
        except requests.RequestException as exc:
            raise GraphUnavailable(f"media download: {exc}") from exc
        finally:
            resp.close()

    def close(self) -> None:
        self.session.close()
