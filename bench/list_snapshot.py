"""The ticket lists' pages as HTML, normalised, to compare two versions of the code
(issue 16: a faster list must print the same bytes).

Usage:
    python bench/list_snapshot.py build DATABASE_URL      # once: a database of its own
    python bench/list_snapshot.py render DATABASE_URL DIR  # with each version of the code
    python bench/list_snapshot.py compare DIR_A DIR_B      # exit status 1 on a difference

`build` fills an empty database (SQLite file or a MariaDB database that exists and is
empty) with the seed data, six staff (master admin, customer service, department
admin, each in English and Indonesian) and some 300 tickets in every status: markup in
subjects and names, e-mails for names, orders with parcel situations, a duplicate and
a merged ticket, assignees with and without unread replies, breached and kept SLAs,
paused clocks. Its times are whole days back, so an age reads the same for hours.

`render` signs each staff member in and saves every list page they may open: the
lists, filtered by department, page 1, 2 and 3, 50 a page, a word and a number
searched, sorted by each sortable column both ways, the queue arguments, an
argument of no meaning kept in the links, an invalid filter value. Normalised: the
CSRF tokens and the CSP nonces (new on every request) become fixed text. Run
`render` of the old code by putting its checkout first on PYTHONPATH (check the line
it prints: which backoffice it imported).
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LISTS = ("progress", "team", "responded", "finished")
PASSWORD = "snapshot-password-1"  # noqa: S105 (accounts of a throwaway database)
STAFF = [
    (role, locale, f"snap-{role.replace('_', '-')}-{locale}@example.com")
    for role in ("master_admin", "customer_service", "admin_department")
    for locale in ("en", "id")
]


def make_app(url: str):
    from backoffice import create_app

    return create_app({"ENV_NAME": "testing", "SQLALCHEMY_DATABASE_URI": url})


def build(url: str) -> None:
    sys.path.insert(0, str(ROOT))
    from backoffice.domain import tickets
    from backoffice.domain.tickets.merging import merge
    from backoffice.extensions import db
    from backoffice.models import Priority, ShipmentSituation, TicketKind
    from backoffice.models.base import utcnow
    from backoffice.seed import seed_base
    from tests.factories import Factories

    app = make_app(url)
    with app.app_context():
        db.create_all()
        seed_base()
        make = Factories(db)
        staff = {}
        for role, locale, email in STAFF:
            dept = "OPS" if role == "admin_department" else None
            staff[role, locale] = make.user(
                role, email=email, password=PASSWORD, locale=locale, department=dept
            )
        master = make._master()
        agent = staff["customer_service", "en"]
        now = utcnow()
        kinds = list(TicketKind)
        priorities = list(Priority)
        situations = [None, *ShipmentSituation]
        customers = [
            make.user(name='Rina <i>Sari</i> & "co"', email="rina@example.com"),
            make.user(name="", email="o'brien<x>@example.com"),
            make.user(name="Budi Santoso"),
        ]
        made = []
        for i in range(130):
            status = LISTS[i % 4] if i < 100 else "team"
            days = 2 + (i * 7) % 23
            customer = customers[i % 3] if i % 5 else make.user()
            order = make.order(customer=customer) if i % 3 == 0 else None
            subject = (
                f"<script>alert({i})</script> paket rusak nomor {i}"
                if i % 11 == 0
                else f"Paket rusak di gudang {i} " + "panjang " * (i % 13)
            )
            t = make.ticket(
                status,
                customer=customer,
                kind=kinds[i % len(kinds)],
                department=("OPS", "CLAIMS")[i % 2],
                subject=subject,
                order=order,
                now=now - timedelta(days=days),
            )
            if t.status.value != "finished" and i % 4:
                tickets.set_priority(
                    t, priorities[i % 4], master, now=now - timedelta(days=days - 1)
                )
            t.situation = situations[i % len(situations)] if order else None
            if i % 6 == 1 and t.status.value != "finished":
                tickets.assign(t, agent, master, now=now - timedelta(days=days - 1))
                if i % 12 == 1:  # the customer wrote after: unread
                    tickets.post_message(t, t.customer, "Masih belum?", now=now - timedelta(days=1))
            made.append(t)
        # Enough Team tickets for a pager with its first and last links (over 7 pages).
        for i in range(180):
            make.ticket("team", customer=customers[i % 3], now=now - timedelta(days=2 + i % 9))
        # A second open ticket on the same parcel (the duplicate mark), and a merged one.
        order = make.order(customer=customers[2])
        first = make.ticket("team", customer=customers[2], order=order, now=now - timedelta(days=3))
        make.ticket("team", customer=customers[2], order=order, now=now - timedelta(days=2))
        gone = make.ticket("team", customer=customers[2], now=now - timedelta(days=4))
        merge(gone, first, master, now=now - timedelta(days=1))
        db.session.commit()
        print(f"built: {len(made) + 183} tickets, {len(STAFF)} staff")


NONCE = re.compile(r'nonce="[^"]*"')
CSRF = re.compile(r'(name="csrf_token"[^>]*value=")[^"]*"|value="[^"]*("[^>]*name="csrf_token")')


def normalise(html: str) -> str:
    html = NONCE.sub('nonce="N"', html)
    return CSRF.sub(lambda m: f'{m.group(1)}T"' if m.group(1) else f'value="T{m.group(2)}', html)


def urls(view) -> list[str]:
    """The pages of one list to render (each staff member gets those of their lists)."""
    from sqlalchemy import select

    from backoffice.extensions import db
    from backoffice.models import Department
    from backoffice.views.filters import DepartmentFilter

    base = view.url + "/"
    claims = db.session.scalar(select(Department.id).where(Department.code == "CLAIMS"))
    dept = f"{view.filter_arg(DepartmentFilter)}={claims}"
    kind = f"flt1_{view.get_filter_arg(0, view._filters[0])}"
    sortable = [i for i, (c, _l) in enumerate(view._list_columns) if view.is_sortable(c)]
    found = [
        "",
        "?page=1",
        "?page=2",
        "?page=5",
        "?page=9",
        "?page=40",
        "?page_size=50",
        "?page_size=50&page=1",
        "?page_size=100",
        f"?{dept}",
        f"?{dept}&page=1",
        f"?{dept}&{kind}=complaint&sort=1&desc=1",
        "?search=rusak",
        "?search=rusak&page=1",
        "?search=paket+gudang&sort=0",
        "?search=CX-",
        "?search=%3Cscript%3E",
        "?search=rina%40example.com",
        "?assignee=me",
        "?assignee=none&spoke=customer",
        "?spoke=staff&page_size=50",
        "?foo=bar&page=1&sort=7",
        f"?{kind}=nonsense",
        "?page=-3",
    ]
    for i in sortable:
        found += [f"?sort={i}", f"?sort={i}&desc=1", f"?sort={i}&page=1&desc=1"]
    return [base + q for q in found]


def render(url: str, out: Path) -> None:
    import backoffice

    print(f"backoffice from {Path(backoffice.__file__).parent}")
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_http import CSRF_RE

    from backoffice.views.tickets import TicketListView

    app = make_app(url)
    out.mkdir(parents=True, exist_ok=True)
    pages = 0
    # No app context held around the requests: Flask would reuse it, and its `g` (the
    # signed-in user, a request's parsed arguments) would leak into the next request.
    with app.test_request_context("/"):
        views = {
            v.url.rstrip("/").rsplit("/", 1)[-1]: v
            for v in app.extensions["admin"][0]._views
            if isinstance(v, TicketListView)
        }
        wanted = {name: urls(views[name]) for name in LISTS}
    for role, locale, email in STAFF:
        client = app.test_client()
        html = client.get("/login").get_data(as_text=True)
        match = CSRF_RE.search(html)
        data = {"email": email, "password": PASSWORD, "csrf_token": match[1] or match[2]}
        assert client.post("/login", data=data).status_code == 302, email
        for name in LISTS:
            for page in wanted[name]:
                resp = client.get(page)
                if resp.status_code == 403:
                    continue
                assert resp.status_code == 200, (email, page, resp.status_code)
                slug = re.sub(r"[^A-Za-z0-9=_.-]+", "_", page.strip("/"))
                text = normalise(resp.get_data(as_text=True))
                (out / f"{role}-{locale}-{slug}.html").write_text(text)
                pages += 1
    print(f"rendered {pages} pages into {out}")


def compare(a: Path, b: Path) -> int:
    names_a = {p.name for p in a.glob("*.html")}
    names_b = {p.name for p in b.glob("*.html")}
    bad = 0
    for name in sorted(names_a ^ names_b):
        print(f"only in one: {name}")
        bad += 1
    for name in sorted(names_a & names_b):
        left, right = (a / name).read_text(), (b / name).read_text()
        if left != right:
            bad += 1
            if bad <= 5:
                diff = difflib.unified_diff(
                    left.splitlines(), right.splitlines(), str(a / name), str(b / name), n=1
                )
                print("\n".join(list(diff)[:40]))
    print(f"{len(names_a & names_b)} pages compared, {bad} differ")
    return 1 if bad else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build").add_argument("url")
    one = sub.add_parser("render")
    one.add_argument("url")
    one.add_argument("out", type=Path)
    two = sub.add_parser("compare")
    two.add_argument("a", type=Path)
    two.add_argument("b", type=Path)
    args = parser.parse_args()
    if args.command == "build":
        build(args.url)
    elif args.command == "render":
        render(args.url, args.out)
    else:
        sys.exit(compare(args.a, args.b))


if __name__ == "__main__":
    main()
