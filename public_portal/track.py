"""Public tracking: `/track` (a form, `?resi=A,B` for up to ten) and `/track/<resi>`.

No login. What it shows comes from `domain.shipments.public_shipments`: the timeline
with its places and times, the promised date and whether it is late — never a name,
phone, address or the couriers' notes (it does not even read them). Every typed resi is
checked (check digit) before any lookup, so a typo is answered "mistyped", a well-formed
resi no parcel has "unknown". Rate-limited per address (RATELIMIT_TRACK), one budget for
both URLs. All the parcels of a page are read in one statement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask import current_app, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from backoffice import idle_polls
from backoffice.domain import shipments
from backoffice.domain.shipments import ResiCheck
from backoffice.extensions import db, limiter

from .base import bp

MAX_RESIS = 10
MAX_INPUT = 400
_SPLIT = re.compile(r"[,;\n\r]+")


@dataclass
class Lookup:
    typed: str
    resi: str
    problem: str = ""  # the message for a mistyped, malformed or unknown resi
    found: shipments.Shipment | None = None
    mine: bool = False  # the signed-in customer's own parcel (they may file a ticket on it)


def _track_limit() -> str:
    return current_app.config["RATELIMIT_TRACK"]


def split_resis(text: str) -> list[str]:
    """The resi someone typed, in order, without repeats: separated by commas, semicolons
    or lines — or by spaces when each part is a whole resi."""
    typed: list[str] = []
    for chunk in _SPLIT.split((text or "")[:MAX_INPUT]):
        chunk = chunk.strip()
        if not chunk:
            continue
        if shipments.check_resi(chunk) is ResiCheck.MALFORMED and len(chunk.split()) > 1:
            parts = chunk.split()
            if all(shipments.check_resi(p) is not ResiCheck.MALFORMED for p in parts):
                typed.extend(parts)
                continue
        typed.append(chunk)
    seen, unique = set(), []
    for t in typed:
        key = shipments.normalise_resi(t)
        if key not in seen:
            seen.add(key)
            unique.append(t)
    return unique


def lookups(typed: list[str]) -> list[Lookup]:
    """Each typed resi checked, then the valid ones looked up, with their timelines, in
    one query."""
    results = []
    for text in typed:
        resi = shipments.normalise_resi(text)
        verdict = shipments.check_resi(resi)
        problem = "" if verdict is ResiCheck.VALID else shipments.resi_message(verdict)
        results.append(Lookup(text[:40], resi[:20], problem))
    valid = [r.resi for r in results if not r.problem]
    found = {}
    engine = db.engines.get(idle_polls.BIND)  # autocommit (MariaDB): no ROLLBACK after
    if valid and engine is None:
        found = shipments.public_shipments(valid)
    elif valid:
        with engine.connect() as conn:
            found = shipments.public_shipments(valid, on=conn)
    viewer = current_user.id if current_user.is_authenticated else None
    for r in results:
        if r.problem:
            continue
        if r.resi not in found:
            r.problem = _(
                "No parcel has the resi %(resi)s (yet). It is written correctly; if the "
                "parcel was handed in today, try again later or ask the sender.",
                resi=r.resi,
            )
        else:
            r.found, owner = found[r.resi]
            r.mine = viewer is not None and owner == viewer
    return results


def _page(text: str, status: int = 200):
    typed = split_resis(text)
    note = ""
    if len(typed) > MAX_RESIS:
        note = _("At most %(n)d resi at once: showing the first %(n)d.", n=MAX_RESIS)
        typed = typed[:MAX_RESIS]
    results = lookups(typed) if typed else []
    if status == 200 and len(results) == 1 and results[0].found is None and request.view_args:
        status = 404
    resp = current_app.make_response(
        (
            render_template(
                "portal/track.html", results=results, typed=", ".join(typed), note=note
            ),
            status,
        )
    )
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Robots-Tag"] = "noindex"
    return resp


def chat_parcels(question: str) -> list[dict]:
    """The parcels whose resi a chat-box question holds (at most three), for the
    as-you-type answers: the public status line and the tracking link only."""
    resis = shipments.find_resis(question)[:3]
    found = shipments.public_shipments(resis)
    parcels = []
    for resi in resis:
        parcel = found.get(resi)
        parcels.append(
            {
                "resi": resi,
                "status": parcel[0].status if parcel else _("Unknown resi"),
                "message": "" if parcel else _("No parcel has this resi."),
                "url": url_for("portal.track_one", resi=resi),
            }
        )
    return parcels


@bp.route("/track")
@limiter.shared_limit(_track_limit, scope="track")
def track():
    """The form, and the parcels of `?resi=` (comma-separated, up to ten)."""
    return _page(request.args.get("resi", ""))


@bp.route("/track/<string:resi>")
@limiter.shared_limit(_track_limit, scope="track")
def track_one(resi: str):
    """One parcel's page (a link to share): 404 when no parcel has that resi."""
    return _page(resi)


@bp.app_template_global("local_time")
def local_time(at, offset: int) -> str:
    """An event's time where it happened (templates of the portal and the desk)."""
    return shipments.local_time(at, offset)


@bp.app_template_global("shipment_of")
def shipment_of(order) -> shipments.Shipment:
    """The live tracking of a ticket's order (the desk and the customer's ticket page)."""
    return shipments.shipment(order)
