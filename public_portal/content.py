"""Public pages: home (announcements + chat box), FAQ with search and votes, catalogue."""

from __future__ import annotations

from flask import (
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_limiter.util import get_remote_address
from flask_login import current_user
from limits import parse
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from backoffice.domain import faq as faqs
from backoffice.domain import permissions as perm
from backoffice.extensions import db, limiter
from backoffice.models import Announcement, FaqCategory, FaqEntry, Product, ProductKind
from backoffice.web import safe_next

from . import search, track
from .base import MAX_ID, bp, lang, page_arg
from .forms import VoteForm, one_line

FAQ_PER_CATEGORY = 5  # on the overview; a category's own page lists them all
FAQ_PER_PAGE = 50
# A search shows this many answers first (the best matches), the rest behind "More answers".
FAQ_BEST = 3
SUGGESTIONS = 5
VOTES_KEPT = 200  # votes remembered per session (a signed cookie: keep it small)
EXCERPT = 220


def _query_arg() -> str:
    return (one_line(request.args.get("q", "")) or "")[: search.MAX_QUERY]


def excerpt(text: str, limit: int = EXCERPT) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


@bp.route("/")
def home():
    stmt = (
        select(Announcement)
        .where(Announcement.published.is_(True))
        .order_by(
            func.coalesce(Announcement.published_at, Announcement.created_at).desc(),
            Announcement.id.desc(),
        )
        .limit(5)
    )
    return render_template("portal/home.html", announcements=db.session.scalars(stmt).all())


@bp.route("/signed-in")
def after_login():
    """SECURITY_POST_LOGIN_VIEW: staff go to the back office, customers to the portal."""
    if perm.is_staff(current_user):
        return redirect(url_for("admin.index"))
    return redirect(url_for("portal.home"))


def _categories() -> list[tuple[FaqCategory, int]]:
    counts = (
        select(FaqEntry.category_id, func.count().label("n"))
        .where(FaqEntry.published.is_(True))
        .group_by(FaqEntry.category_id)
        .subquery()
    )
    stmt = (
        select(FaqCategory, counts.c.n)
        .join(counts, counts.c.category_id == FaqCategory.id)
        .order_by(FaqCategory.position, FaqCategory.id)
    )
    return [(c, n) for c, n in db.session.execute(stmt)]


def _overview() -> dict[int, list[FaqEntry]]:
    """The first few published entries of every category, in one query."""
    rank = (
        func.row_number()
        .over(partition_by=FaqEntry.category_id, order_by=(FaqEntry.position, FaqEntry.id))
        .label("rank")
    )
    ranked = select(FaqEntry.id, rank).where(FaqEntry.published.is_(True)).subquery()
    stmt = (
        select(FaqEntry)
        .join(ranked, ranked.c.id == FaqEntry.id)
        .where(ranked.c.rank <= FAQ_PER_CATEGORY)
        .order_by(FaqEntry.position, FaqEntry.id)
    )
    grouped: dict[int, list[FaqEntry]] = {}
    for entry in db.session.scalars(stmt):
        grouped.setdefault(entry.category_id, []).append(entry)
    return grouped


@bp.route("/faq")
def faq():
    q = _query_arg()
    categories = _categories()
    code = request.args.get("category", "")
    category = next((c for c, _n in categories if c.code == code), None)
    if code and category is None:
        abort(404)
    page = page_arg()
    results = entries = grouped = None
    has_more = False
    if q:
        results = search.search(q, limit=30)
    elif category is not None:
        stmt = (
            select(FaqEntry)
            .where(FaqEntry.published.is_(True), FaqEntry.category_id == category.id)
            .order_by(FaqEntry.position, FaqEntry.id)
            .offset((page - 1) * FAQ_PER_PAGE)
            .limit(FAQ_PER_PAGE + 1)
        )
        entries = db.session.scalars(stmt).all()
        has_more = len(entries) > FAQ_PER_PAGE
        entries = entries[:FAQ_PER_PAGE]
    else:
        grouped = _overview()
    return render_template(
        "portal/faq.html",
        q=q,
        parcels=track.chat_parcels(q) if q else [],
        categories=categories,
        category=category,
        results=results,
        entries=entries,
        grouped=grouped,
        page=page,
        has_more=has_more,
        voted=set(session.get("faq_voted", [])) | faqs.voted_entries(_signed_in()),
        vote_form=VoteForm(),
        too_short=bool(q) and not search.words(q),
        best_count=FAQ_BEST,
    )


@bp.route("/faq/suggest")
def faq_suggest():
    """The chat box's as-you-type answers: JSON, a few matches, the ticket link."""
    q = _query_arg()
    language = lang()
    found = search.search(q, limit=SUGGESTIONS) if q else []
    resp = jsonify(
        query=q,
        parcels=track.chat_parcels(q),
        results=[
            {
                "id": e.id,
                "question": e.localized("question", language),
                "answer": excerpt(e.localized("answer", language)),
                "url": url_for("portal.faq", q=q) + f"#faq-{e.id}",
            }
            for e in found
        ],
        ticket_url=url_for("portal.new_ticket", subject=q[:200], body=q) if q else None,
    )
    resp.headers["Cache-Control"] = "private, max-age=60"
    resp.vary.add("Cookie")  # the answers are in the user's language
    resp.vary.add("Accept-Language")
    return resp


def _first_anonymous_vote_here(entry_id: int) -> bool:
    """Anonymous answers count once per entry and address (RATELIMIT_FAQ_VOTE_ENTRY), not
    once per session: a cleared cookie is not a second voter. Signed-in answers are counted
    per account (domain.faq.vote). Fails open (counts) if the limit storage fails."""
    if current_user.is_authenticated or not limiter.enabled:
        return True
    try:
        return limiter.limiter.hit(
            parse(current_app.config["RATELIMIT_FAQ_VOTE_ENTRY"]),
            "faq-vote-entry",
            get_remote_address(),
            str(entry_id),
        )
    except Exception:  # noqa: BLE001 (Redis down: the vote is counted, with a log line)
        current_app.logger.warning("FAQ vote: rate-limit storage failed", exc_info=True)
        return True


def _signed_in():
    return current_user if current_user.is_authenticated else None


@bp.route("/faq/<int:entry_id>/vote", methods=["POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_FAQ_VOTE"])
def faq_vote(entry_id: int):
    """'Was this helpful?': counted once per entry and account (or session, signed out)."""
    form = VoteForm()
    entry = db.session.get(FaqEntry, entry_id) if entry_id <= MAX_ID else None
    if entry is None or not entry.published:
        abort(404)
    anchor = f"#faq-{entry_id}"
    if not form.validate_on_submit():
        # Where to go back to is read only from a form that proved its origin (its
        # CSRF token): an unchecked `next` would make this a redirector for anyone.
        if form.csrf_token.errors:
            flash(_("The form expired. Please try again."), "error")
        else:
            flash(_("Choose yes or no."), "error")
        return redirect(url_for("portal.faq") + anchor)
    target = safe_next(form.next.data, url_for("portal.faq")).split("#")[0] + anchor
    voted = list(session.get("faq_voted", []))
    counted = False
    if entry_id not in voted and _first_anonymous_vote_here(entry_id):
        try:
            counted = faqs.vote(entry, form.helpful.data == "yes", _signed_in())
            db.session.commit()
        except IntegrityError:  # the same account's other click won the race
            db.session.rollback()
        session["faq_voted"] = (voted + [entry_id])[-VOTES_KEPT:]
    if not counted:
        flash(_("You already told us whether this answer helped. Thank you!"), "info")
        return redirect(target)
    flash(_("Thank you for your feedback!"), "success")
    return redirect(target)


@bp.route("/products")
def products():
    stmt = (
        select(Product)
        .where(Product.active.is_(True))
        .order_by(Product.kind.desc(), Product.position, Product.id)
    )
    items = db.session.scalars(stmt).all()
    return render_template(
        "portal/products.html",
        services=[p for p in items if p.kind is ProductKind.SERVICE],
        addons=[p for p in items if p.kind is not ProductKind.SERVICE],
    )
