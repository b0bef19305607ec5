"""The OpenAPI 3.1 document of `/api/v1`, served at `/api/v1/openapi.json`.

The request schema below is not only documentation: `tracking.py` validates every
request body against `BATCH_SCHEMA` itself (jsonschema, Draft 2020-12, the dialect of
OpenAPI 3.1), so the document and the checks cannot drift apart. It holds the body's
shape and types only; what a single event means (a resi's check digit, a known parcel,
a known event, a time not in the future, lengths) is checked per event by
`domain.shipments.record_events`, exactly as for `carebox tracking import`, and an
event it refuses is reported in the response without refusing the batch.
"""

from __future__ import annotations

from ..domain.shipments import FEED_KINDS, MAX_LOCATION, MAX_NOTE

MAX_EVENTS = 1000
MAX_BODY_BYTES = 4 * 1024 * 1024  # 1,000 events of the longest allowed fields fit
EVENT_KINDS = [k.value for k in FEED_KINDS]  # not `cancelled`: see shipments.FEED_KINDS

_nullable_text = {"type": ["string", "null"]}

EVENT_SCHEMA = {
    "type": "object",
    "required": ["resi", "event", "occurred_at"],
    "additionalProperties": False,
    "properties": {
        "resi": {
            "type": "string",
            "description": "The parcel's resi (UPU S10, e.g. CB123456785ID); spaces, dashes "
            "and lower case are accepted. A wrong check digit refuses the event.",
            "examples": ["CB123456785ID"],
        },
        "event": {
            "type": "string",
            "description": "One of: " + ", ".join(EVENT_KINDS) + ". Another value refuses "
            "the event; so does `cancelled`: an order is cancelled in carebox (by its "
            "customer before pickup, or by customer service), never by the operations feed.",
            "examples": ["out_for_delivery"],
        },
        "occurred_at": {
            "type": "string",
            "description": "When it happened, ISO 8601 with its offset "
            "(2026-12-01T14:05:00+07:00, or ...Z); without an offset the time is WIB "
            "(UTC+7). More than an hour ahead, or before 2000, refuses the event.",
            "examples": ["2026-12-01T14:05:00+07:00"],
        },
        "location": {
            **_nullable_text,
            "description": f"Hub or city, at most {MAX_LOCATION} characters (shown publicly).",
            "examples": ["Hub Cakung, Jakarta"],
        },
        "note": {
            **_nullable_text,
            "description": f"At most {MAX_NOTE} characters; for delivery_failed, why.",
        },
    },
}

BATCH_SCHEMA = {
    "type": "object",
    "required": ["events"],
    "additionalProperties": False,
    "properties": {
        "events": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_EVENTS,
            "items": {"$ref": "#/components/schemas/TrackingEventIn"},
        }
    },
}

RESULT_SCHEMA = {
    "type": "object",
    "required": ["index", "resi", "outcome"],
    "additionalProperties": False,
    "properties": {
        "index": {
            "type": "integer",
            "minimum": 0,
            "description": "The event's place in the request's `events`, from 0.",
        },
        "resi": {"type": "string", "description": "The resi as normalised."},
        "outcome": {
            "type": "string",
            "enum": ["inserted", "unchanged", "refused"],
            "description": "inserted: recorded now; unchanged: the same resi, event and "
            "occurred_at were recorded already (sending a batch again is safe); refused: "
            "see reason.",
        },
        "reason": {"type": "string", "description": "Why it was refused (refused only)."},
    },
}

RESPONSE_SCHEMA = {
    "type": "object",
    "required": ["inserted", "unchanged", "refused", "results"],
    "additionalProperties": False,
    "properties": {
        "inserted": {"type": "integer", "minimum": 0},
        "unchanged": {"type": "integer", "minimum": 0},
        "refused": {"type": "integer", "minimum": 0},
        "results": {
            "type": "array",
            "items": {"$ref": "#/components/schemas/TrackingEventResult"},
            "description": "One result per event, in the request's order.",
        },
    },
}

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "A short title."},
        "message": {"type": "string", "description": "What went wrong and what to do."},
        "problems": {
            "type": "array",
            "description": "Where the body does not match the schema (400 only).",
            "items": {
                "type": "object",
                "required": ["path", "message"],
                "properties": {
                    "path": {"type": "string", "description": "JSON Pointer, e.g. /events/3/resi."},
                    "message": {"type": "string"},
                },
            },
        },
    },
}


def _error(description: str, headers: dict | None = None) -> dict:
    out = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if headers:
        out["headers"] = headers
    return out


_retry_after = {
    "Retry-After": {
        "description": "Seconds to wait before sending again.",
        "required": True,
        "schema": {"type": "string"},
    }
}
_bearer_challenge = {
    "WWW-Authenticate": {
        "description": "The Bearer challenge (RFC 6750).",
        "required": True,
        "schema": {"type": "string"},
    }
}


def document(server_url: str = "/") -> dict:
    """The OpenAPI 3.1 document."""
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "carebox API",
            "version": "1",
            "description": "Tracking events from the operations system. Each token comes "
            "from `carebox api-token create NAME --scope tracking:write` (printed once). "
            "See docs/api.md.",
        },
        "servers": [{"url": server_url}],
        "security": [{"bearerAuth": []}],
        "paths": {
            "/api/v1/tracking-events": {
                "post": {
                    "operationId": "postTrackingEvents",
                    "summary": "Record a batch of tracking events (idempotent)",
                    "description": "Each event is checked on its own, as by `carebox "
                    "tracking import`: a refused event carries its index and reason and "
                    "never stops the others. The same (resi, event, occurred_at) twice is "
                    "one event, so a batch may be sent again after a timeout. Needs the "
                    "scope tracking:write; rate-limited per token (RATELIMIT_API).",
                    "security": [{"bearerAuth": ["tracking:write"]}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/TrackingEventBatch"}
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "The batch was handled: one result per event.",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/TrackingEventResponse"}
                                }
                            },
                        },
                        "400": _error(
                            "The body is not JSON, or does not match the schema (nothing "
                            "was recorded)."
                        ),
                        "401": _error("No token, or an unknown or revoked one.", _bearer_challenge),
                        "403": _error(
                            "The token lacks the scope tracking:write.", _bearer_challenge
                        ),
                        "413": _error(f"The body is larger than {MAX_BODY_BYTES} bytes."),
                        "415": _error("The body is not sent as application/json."),
                        "429": _error("Too many requests for this token.", _retry_after),
                        "503": _error(
                            "The database cannot be reached; send the batch again "
                            "later (it is idempotent).",
                            _retry_after,
                        ),
                    },
                }
            }
        },
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Authorization: Bearer cbx_… (a token from `carebox "
                    "api-token create`).",
                }
            },
            "schemas": {
                "TrackingEventIn": EVENT_SCHEMA,
                "TrackingEventBatch": BATCH_SCHEMA,
                "TrackingEventResult": RESULT_SCHEMA,
                "TrackingEventResponse": RESPONSE_SCHEMA,
                "Error": ERROR_SCHEMA,
            },
        },
    }
