"""`POST /api/v1/tracking-events` and `GET /api/v1/openapi.json`.

A batch of up to MAX_EVENTS events goes through `domain.shipments.record_events` —
the rule the CSV import and the order page use — and is committed in one transaction;
each event's result (inserted, unchanged, refused with its reason) comes back at its
index. The body is checked against the OpenAPI document's schema first (shape and
types: a batch that does not match is a 400 and records nothing). Idempotent: the same
batch again is all `unchanged`, and two identical batches at once insert each event
once (the unique key of an event; a deadlock between them is retried).
"""

from __future__ import annotations

import functools
import json

from flask import current_app, g, jsonify, request
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from ..domain import api_tokens, shipments
from ..extensions import limiter
from ..models import TrackingSource
from ..transactions import retrying
from ..web import retry_after_limit
from . import bp
from .openapi import BATCH_SCHEMA, EVENT_SCHEMA, MAX_BODY_BYTES, MAX_EVENTS, document


@functools.cache
def _validator():
    """The schema's validator, built on the first body _conforms does not accept:
    jsonschema (with its referencing and rpds) is 8 MB of every worker's memory, and
    a well-formed batch never needs it (issue 16 item 9)."""
    from jsonschema import Draft202012Validator  # noqa: PLC0415

    return Draft202012Validator(
        {
            **BATCH_SCHEMA,
            "properties": {
                "events": {**BATCH_SCHEMA["properties"]["events"], "items": EVENT_SCHEMA}
            },
        }
    )


MAX_PROBLEMS = 20


class ApiError(HTTPException):
    """An API refusal with its JSON body (and headers)."""

    def __init__(self, code: int, title: str, message: str, headers=None, **extra):
        super().__init__(message)
        self.code, self.title, self.extra, self.headers_ = code, title, extra, headers or {}


def _json_error(code: int, title: str, message: str, headers=None, **extra):
    resp = jsonify({"error": title, "message": message, **extra})
    resp.status_code = code
    resp.headers["Cache-Control"] = "no-store"
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    if isinstance(exc, ApiError):
        return _json_error(exc.code, exc.title, exc.description, exc.headers_, **exc.extra)
    messages = {
        404: _("No such API address (see /api/v1/openapi.json)."),
        405: _("This API address does not take that method."),
        413: _(
            "The body is larger than %(n)d bytes: send fewer events per batch.", n=MAX_BODY_BYTES
        ),
        429: _("Too many requests with this token. Wait and send the batch again."),
    }
    resp = _json_error(exc.code or 400, exc.name, messages.get(exc.code, exc.description or ""))
    for key, value in exc.get_headers():
        if key.lower() not in ("content-type", "content-length"):
            resp.headers[key] = value
    if exc.code == 429:
        resp.headers["Retry-After"] = retry_after_limit()
    return resp


def _limit() -> str:
    return current_app.config["RATELIMIT_API"]


def _limit_key() -> str:
    """Per token (by its hash: no secret in the limiter's storage); per address without."""
    secret = api_tokens.bearer(request.headers.get("Authorization"))
    if secret:
        return "api-token:" + api_tokens.token_hash(secret)[:32]
    return "api-addr:" + (request.remote_addr or "")


def _require(scope: str):
    """The request's token when it has `scope`; else 401 (none, unknown, revoked) or 403."""
    secret = api_tokens.bearer(request.headers.get("Authorization"))
    if secret is None:
        raise ApiError(
            401,
            _("Token required"),
            _("Send a token: Authorization: Bearer <token> (carebox api-token create)."),
            {"WWW-Authenticate": 'Bearer realm="carebox"'},
        )
    token = api_tokens.authenticate(secret)
    if token is None:
        raise ApiError(
            401,
            _("Invalid token"),
            _("The token is unknown or was revoked."),
            {"WWW-Authenticate": 'Bearer realm="carebox", error="invalid_token"'},
        )
    if not api_tokens.has_scope(token, scope):
        raise ApiError(
            403,
            _("Insufficient scope"),
            _("This token lacks the scope %(scope)s.", scope=scope),
            {
                "WWW-Authenticate": f'Bearer realm="carebox", error="insufficient_scope", '
                f'scope="{scope}"'
            },
        )
    g.api_token = token
    return token


def _body():
    """The request's JSON body, checked against the schema; ApiError 400/415 otherwise."""
    if request.mimetype != "application/json":
        raise ApiError(
            415,
            _("Unsupported media type"),
            _("Send the batch as JSON with Content-Type: application/json."),
        )
    raw = request.get_data(cache=False)
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        # ValueError: bad JSON, bad UTF-8, an integer of thousands of digits;
        # RecursionError: arrays nested thousands deep.
        detail = str(exc)[:200] if isinstance(exc, json.JSONDecodeError) else ""
        raise ApiError(
            400,
            _("Not JSON"),
            _("The body is not valid JSON (UTF-8).") + (f" {detail}" if detail else ""),
        ) from None
    if _conforms(body):
        return body
    try:
        errors = sorted(_validator().iter_errors(body), key=lambda e: list(e.absolute_path))
    except RecursionError:
        errors = None
    if errors == []:
        return body  # the schema is the judge; _conforms is only its fast path
    problems = [
        {"path": _pointer(e.absolute_path), "message": e.message[:300]}
        for e in (errors or [])[:MAX_PROBLEMS]
    ]
    raise ApiError(
        400,
        _("Invalid batch"),
        _(
            'The body must be {"events": [...]} with 1 to %(n)d events, each with the '
            "strings resi, event and occurred_at (location and note: a string or null). "
            "Nothing was recorded.",
            n=MAX_EVENTS,
        ),
        problems=problems,
    )


_EVENT_KEYS = frozenset(EVENT_SCHEMA["properties"])
_REQUIRED = tuple(EVENT_SCHEMA["required"])
_OPTIONAL = tuple(k for k in EVENT_SCHEMA["properties"] if k not in _REQUIRED)


def _conforms(body) -> bool:
    """True only for a body BATCH_SCHEMA accepts, in plain Python: jsonschema takes about
    20 ms over 500 events, this well under one. False sends the body to jsonschema,
    which decides and says where (tests/test_api_tracking.py checks they agree)."""
    if type(body) is not dict or body.keys() != {"events"}:
        return False
    events = body["events"]
    if type(events) is not list or not 1 <= len(events) <= MAX_EVENTS:
        return False
    for event in events:
        if type(event) is not dict or not event.keys() <= _EVENT_KEYS:
            return False
        for key in _REQUIRED:
            if type(event.get(key)) is not str:
                return False
        for key in _OPTIONAL:
            if event.get(key) is not None and type(event[key]) is not str:
                return False
    return True


def _pointer(path) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


@bp.post("/tracking-events")
@limiter.limit(_limit, key_func=_limit_key)
def post_tracking_events():
    """Record a batch of tracking events (see the module)."""
    _require(api_tokens.TRACKING_WRITE)
    body = _body()
    items = [
        shipments.EventIn(
            e["resi"], e["event"], e["occurred_at"], e.get("location") or "", e.get("note") or ""
        )
        for e in body["events"]
    ]
    results = retrying(
        lambda: shipments.record_events(items, source=TrackingSource.API),
        what="api tracking-events",
    )
    counts = {shipments.INSERTED: 0, shipments.UNCHANGED: 0, shipments.REFUSED: 0}
    out = []
    for index, result in enumerate(results):
        counts[result.outcome] += 1
        row = {"index": index, "resi": result.resi, "outcome": result.outcome}
        if result.outcome == shipments.REFUSED:
            row["reason"] = result.reason
        out.append(row)
    resp = jsonify({**counts, "results": out})
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/openapi.json")
def openapi_json():
    """The OpenAPI 3.1 document (public: it holds no secret)."""
    return jsonify(document(request.script_root + "/"))
