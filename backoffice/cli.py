"""The `carebox` command: the Flask CLI bound to the app, plus carebox's own commands."""

from __future__ import annotations

import os
import signal
import sys
import threading

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext
from flask_security import hash_password
from sqlalchemy import select

from .cli_worker import log_to_stderr, stop_on_signal
from .domain import permissions as perm
from .extensions import db
from .models.base import utcnow


def _create_app():
    from . import create_app

    app = create_app()
    # The CLI, not the factory, makes the folders a SQLite file and uploads live in.
    os.makedirs(app.instance_path, exist_ok=True)
    os.makedirs(app.config["UPLOAD_FOLDER"], exist_ok=True)
    return app


@click.group(cls=FlaskGroup, create_app=_create_app)
def main():
    """carebox: customer-care back office. Every `flask` command works here too."""


@click.command("seed")
@click.option("--demo", is_flag=True, help="Also add demo staff, a customer and sample tickets.")
@with_appcontext
def seed_command(demo: bool):
    """Load seed/ (departments, routing rules, products, FAQ) idempotently."""
    from .seed import seed_base, seed_demo

    summary = seed_base()
    click.echo(
        f"departments: {summary['departments']}, products: {summary['products']}, "
        f"faq: {summary['faq']}"
    )
    if demo:
        logins = seed_demo()
        click.echo("Demo logins (email / password / role):")
        for login in logins:
            dep = f" ({login.department})" if login.department else ""
            click.echo(f"  {login.email:32} {login.password:20} {login.role}{dep}")
        from .seed_parcels import seed_demo_parcels

        parcels = seed_demo_parcels()
        if parcels:
            click.echo("Demo parcels (track them at /track/RESI):")
            for resi, what in parcels:
                click.echo(f"  {resi}  {what}")
    db.session.commit()


@click.command("seed-bulk")
@click.option("--tickets", "n_tickets", type=click.IntRange(1, 10_000_000), required=True)
@click.option(
    "--customers",
    "n_customers",
    type=click.IntRange(1, 10_000_000),
    help="Customers to create (default: one per five tickets).",
)
@click.option(
    "--messages",
    "n_messages",
    type=click.IntRange(1, 100),
    default=3,
    show_default=True,
    help="Messages per ticket.",
)
@click.option(
    "--orders",
    "n_orders",
    type=click.IntRange(1, 10_000_000),
    help="Orders (shipments, 6-10 tracking events each) to create (default: one per ticket).",
)
@click.option("--batch", type=click.IntRange(100, 200_000), default=50_000, show_default=True)
@with_appcontext
def seed_bulk_command(
    n_tickets: int, n_customers: int | None, n_orders: int | None, n_messages: int, batch: int
):
    """Bulk synthetic customers, orders with tracking events, tickets, messages and events."""
    from .bulk import seed_bulk

    stats = seed_bulk(
        n_tickets,
        n_customers=n_customers,
        n_orders=n_orders,
        n_messages=n_messages,
        batch=batch,
        progress=True,
    )
    click.echo(
        "inserted "
        + ", ".join(f"{v:,} {k}" for k, v in stats.counts.items())
        + f" in {stats.seconds:.1f} s ({stats.rows_per_second:,.0f} rows/s, {stats.loader})"
    )


@click.group("staff")
def staff_group():
    """Manage staff accounts."""


@staff_group.command("create")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(perm.STAFF_ROLES))
@click.option("--department", "department_code", help="Department code (department admins).")
@click.option("--name", default="", help="Full name.")
@click.option("--password", help="Prompted (hidden, twice) when omitted.")
@with_appcontext
def staff_create(email, role, department_code, name, password):
    """Create a staff user with ROLE (and DEPARTMENT for department admins)."""
    from flask import current_app

    from .models import Department, User
    from .security_setup import ensure_roles, user_datastore

    try:
        email = current_app.extensions["security"]._mail_util.validate(email)
    except ValueError as exc:
        raise click.UsageError(f"{email!r} is not a valid email address: {exc}") from exc
    if db.session.scalar(select(User.id).where(User.email == email)):
        raise click.UsageError(f"A user with email {email} already exists.")
    department = None
    if department_code:
        department = db.session.scalar(
            select(Department).where(Department.code == department_code.upper())
        )
        if department is None:
            codes = ", ".join(db.session.scalars(select(Department.code).order_by(Department.code)))
            known = codes or "none (run carebox seed)"
            raise click.UsageError(f"Unknown department {department_code!r}. Known: {known}.")
    roles = ensure_roles()
    if perm.needs_department([roles[role]]) and department is None:
        raise click.UsageError("A department admin needs --department CODE.")
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    pw_error = current_app.extensions["security"]._password_util.validate(password, True)[0]
    if not pw_error:
        from .passwords import password_problems

        # Staff accounts meet the staff rule (longer, harder to guess) wherever they are made.
        pw_error = password_problems(password, staff=True, context=[email, name or ""])
    if pw_error:
        raise click.UsageError("Password refused: " + "; ".join(map(str, pw_error)))
    user_datastore.create_user(
        email=email,
        password=hash_password(password),
        name=name,
        active=True,
        roles=[role],
        department=department,
        confirmed_at=utcnow(),  # ops vouch for a staff address: no confirmation mail
    )
    db.session.commit()
    click.echo(f"Created {role} {email}" + (f" in {department.code}" if department else ""))


def _import(file: str, load) -> None:
    """Run an all-or-nothing import; list every problem as FILE:LINE: message."""
    from .domain.imports import ImportFileError

    try:
        result = load(file)
    except ImportFileError as exc:
        db.session.rollback()
        for line, message in exc.problems:
            click.echo(f"{file}:{line}: {message}", err=True)
        raise click.ClickException(
            f"{len(exc.problems)} problem(s); nothing was imported."
        ) from exc
    db.session.commit()
    click.echo(str(result))


@click.group("faq")
def faq_group():
    """Manage the FAQ."""


@faq_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@with_appcontext
def faq_import(file):
    """Upsert FAQ entries from a CSV or YAML FILE (all rows or none)."""
    from .domain.faq import import_faq

    _import(file, import_faq)


@click.group("products")
def products_group():
    """Manage the catalogue of products and services."""


@products_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@with_appcontext
def products_import(file):
    """Upsert products and services by code from a CSV or YAML FILE (all rows or none)."""
    from .domain.catalog import import_products

    _import(file, import_products)


@click.group("tracking")
def tracking_group():
    """Parcels' tracking events."""


@tracking_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False, writable=True),
    help="Write every refused row (line, reason, its cells) to this CSV file.",
)
@click.option("--batch", type=click.IntRange(1, 20_000), default=5000, show_default=True)
@with_appcontext
def tracking_import(file: str, rejects: str | None, batch: int):
    """Import tracking events (CSV: resi,event,occurred_at,location,note). Idempotent:
    events already recorded are unchanged. Exit status 1 when some row was refused
    (the other rows landed)."""
    from .tracking_import import import_file

    size = os.path.getsize(file)
    out = open(rejects, "w", newline="", encoding="utf-8") if rejects else None  # noqa: SIM115
    try:
        with (
            open(file, "rb", buffering=0) as binary,
            click.progressbar(length=size, label="Importing", file=sys.stderr) as bar,
        ):
            summary = import_file(binary, batch=batch, rejects=out, on_bytes=bar.update)
    finally:
        if out:
            out.close()
    click.echo(
        f"{summary.inserted} inserted, {summary.unchanged} unchanged, "
        f"{summary.refused} refused ({summary.rows} rows in {summary.seconds:.1f} s)"
    )
    for line, resi, reason in summary.first_refused:
        click.echo(f"{file}:{line}: {resi + ': ' if resi else ''}{reason}", err=True)
    more = summary.refused - len(summary.first_refused)
    if more > 0:
        where = f" (all of them in {rejects})" if rejects else " (--rejects FILE lists them all)"
        click.echo(f"... and {more} more refused{where}", err=True)
    if summary.refused:
        sys.exit(1)


@tracking_group.command("situations")
@click.option("--all", "everything", is_flag=True, help="Re-derive every open ticket's.")
@click.option("--loop", is_flag=True, help="Keep going until SIGTERM or Ctrl-C.")
@click.option("--interval", default=300.0, show_default=True, help="Seconds between rounds.")
@with_appcontext
def tracking_situations(everything: bool, loop: bool, interval: float):
    """Keep tickets' parcel situations true as time passes (a parcel turns stuck or late
    without any event): re-derive the tickets whose moment has come. --all: every open
    ticket about a parcel (after the upgrade, or a change of CAREBOX_STUCK_DAYS)."""
    from .domain import situations

    if everything:
        changed = situations.refresh_all()
        db.session.commit()
        click.echo(f"situations: {changed} changed")
        return
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        while True:
            looked = situations.refresh_due()
            db.session.commit()
            if looked == situations.CHUNK:
                continue  # more are due: no pause
            click.echo(f"situations: {looked} looked at")
            if not loop or stop.wait(interval):
                break
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@click.group("outbox")
def outbox_group():
    """The email outbox."""


@outbox_group.command("send")
@click.option("--loop", is_flag=True, help="Keep sending until SIGTERM or Ctrl-C.")
@click.option("--batch", type=click.IntRange(1, 10_000), help="Rows claimed at a time.")
@click.option("--interval", type=click.FloatRange(0.1, 3600), help="Seconds between idle polls.")
@with_appcontext
def outbox_send(loop: bool, batch: int | None, interval: float | None):
    """Deliver queued email once (one batch), or keep delivering with --loop.

    Each turn also queues the next chunk of an announcement that is being sent.
    """
    from .channels.mailer import run_loop, work

    if not loop:
        log_to_stderr()
        click.echo(str(work(batch)))
        return
    with stop_on_signal() as stop:
        click.echo("outbox: sending; stop with Ctrl-C or SIGTERM")
        try:
            total = run_loop(batch, interval, stop, on_report=lambda r: click.echo(str(r)))
        except KeyboardInterrupt:
            click.echo("outbox: interrupted; unfinished claims are retried after their timeout")
            return
    click.echo(f"outbox: stopped; {total}")


@click.group("whatsapp")
def whatsapp_group():
    """The WhatsApp channel's worker."""


@whatsapp_group.command("process")
@click.option("--loop", is_flag=True, help="Keep working until SIGTERM or Ctrl-C.")
@click.option("--batch", type=click.IntRange(1, 10_000), help="Rows claimed at a time.")
@click.option("--interval", type=click.FloatRange(0.1, 3600), help="Seconds between idle polls.")
@with_appcontext
def whatsapp_process(loop: bool, batch: int | None, interval: float | None):
    """Post queued WhatsApp messages to tickets and send staff replies (once, or --loop)."""
    from flask import current_app

    from .channels.whatsapp import enabled
    from .channels.whatsapp_out import run_loop, work

    if not enabled(current_app.config):
        raise click.ClickException(
            "WhatsApp is not configured: set WHATSAPP_APP_SECRET, WHATSAPP_VERIFY_TOKEN, "
            "WHATSAPP_TOKEN and WHATSAPP_PHONE_NUMBER_ID."
        )
    if not loop:
        log_to_stderr()
        inbound, outbound = work(batch)
        click.echo(f"{inbound}; {outbound}")
        return
    with stop_on_signal() as stop:
        click.echo("whatsapp: working; stop with Ctrl-C or SIGTERM")
        try:
            run_loop(batch, interval, stop, on_report=lambda i, o: click.echo(f"{i}; {o}"))
        except KeyboardInterrupt:
            click.echo("whatsapp: interrupted; unfinished claims are retried after their timeout")


@click.group("loyalty")
def loyalty_group():
    """Loyalty figures and segments of customers."""


@loyalty_group.command("refresh")
@click.option("--batch", type=click.IntRange(100, 1_000_000), help="Customer ids per statement.")
@with_appcontext
def loyalty_refresh(batch: int | None):
    """Recompute every customer's recency, frequency, value, complaints, rating and segment."""
    from .domain.loyalty import refresh_all

    report = refresh_all(batch=batch)
    for segment, count in report.segments.items():
        click.echo(f"  {segment:16} {count:>9,}")
    click.echo(f"{report.customers:,} customers refreshed in {report.seconds:.2f} s")


@click.group("mail")
def mail_group():
    """Inbound email: the receiver, retries, figures (backoffice/channels/email_in.py)."""


@mail_group.command("receive")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=2525, show_default=True)
@click.option("--smtp", is_flag=True, help="Speak SMTP instead of LMTP.")
@click.option(
    "--retry-every",
    type=click.FloatRange(1, 3600),
    default=60,
    show_default=True,
    help="Seconds between retries of stored but unprocessed mail.",
)
@with_appcontext
def mail_receive(host: str, port: int, smtp: bool, retry_every: float):
    """Receive mail from the mail server (LMTP, or SMTP with --smtp) until SIGTERM or Ctrl-C."""
    from flask import current_app

    from .channels.mail_server import serve

    kind = "SMTP" if smtp else "LMTP"
    with stop_on_signal() as stop:
        click.echo(f"mail: {kind} on {host}:{port}; stop with Ctrl-C or SIGTERM")
        serve(
            current_app._get_current_object(),
            host,
            port,
            smtp=smtp,
            retry_every=retry_every,
            stop=stop,
        )
    click.echo("mail: stopped")


@mail_group.command("fetch")
@click.option("--loop", is_flag=True, help="Keep fetching (IMAP IDLE where offered).")
@click.option(
    "--interval",
    type=click.FloatRange(1, 3600),
    default=60,
    show_default=True,
    help="Seconds between polls (or the longest IDLE wait).",
)
@with_appcontext
def mail_fetch(loop: bool, interval: float):
    """Fetch unseen mail from the IMAP mailbox CAREBOX_IMAP_URL (once, or with --loop)."""
    from flask import current_app

    from .channels import mail_fetch as imap

    log_to_stderr()
    app = current_app._get_current_object()
    try:
        box = imap.mailbox(app.config.get("CAREBOX_IMAP_URL") or "")
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if not loop:
        try:
            conn = imap.connect(box)
        except (OSError, imap.imaplib.IMAP4.error) as exc:
            raise click.ClickException(f"IMAP {box.host}: {exc}") from exc
        try:
            counts = imap.fetch_once(conn, app)
        finally:
            conn.logout()
        details = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
        click.echo(f"fetched {sum(counts.values())}" + (f" ({details})" if details else ""))
        return
    with stop_on_signal() as stop:
        click.echo(f"mail: fetching from {box.host}/{box.folder}; stop with Ctrl-C or SIGTERM")
        imap.run_loop(app, app.config["CAREBOX_IMAP_URL"], interval, stop, on_report=click.echo)
    click.echo("mail: stopped")


@mail_group.command("process")
@click.option("--all", "everything", is_flag=True, help="Also rows that failed 5 times.")
@with_appcontext
def mail_process(everything: bool):
    """Process stored mail that was not processed yet (after a failure or an outage)."""
    from .channels.email_in import process_pending

    log_to_stderr()
    counts = process_pending(max_attempts=None if everything else 5)
    total = sum(counts.values())
    details = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
    click.echo(f"processed {total}" + (f" ({details})" if details else ""))


@mail_group.command("status")
@click.option("--hours", type=click.IntRange(1, 24 * 365), default=24, show_default=True)
@with_appcontext
def mail_status(hours: int):
    """Inbound mail of the last HOURS by status and reason; held, unprocessed, throttled."""
    from datetime import timedelta

    from .channels.email_in import status_counts, throttled_senders

    since = utcnow() - timedelta(hours=hours)
    recent = status_counts(since)
    overall = status_counts()
    click.echo(f"last {hours} h: " + _counts(recent["by_status"]))
    if recent["by_reason"]:
        click.echo("  reasons: " + _counts(recent["by_reason"]))
    click.echo(
        f"waiting: {overall['by_status'].get('held', 0)} held for review, "
        f"{overall['by_status'].get('received', 0)} not processed yet"
    )
    for sender, count in throttled_senders(since):
        click.echo(f"  throttled: {sender} ({count})")


@click.group("exports")
def exports_group():
    """Report exports written in the background (large CSV and XLSX files)."""


@exports_group.command("run")
@click.option("--loop", is_flag=True, help="Keep working until SIGTERM or Ctrl-C.")
@click.option("--interval", type=click.FloatRange(0.1, 3600), default=2.0, show_default=True)
@with_appcontext
def exports_run(loop: bool, interval: float):
    """Write the waiting export jobs (all of them, or keep going with --loop).

    Any number may run: each claims its own job. A worker that dies mid-file leaves its
    lease (CAREBOX_EXPORT_LEASE_SECONDS) to run out, and the next one starts the file again.
    """
    from .domain.export_jobs import work

    with stop_on_signal() as stop:
        if loop:
            click.echo("exports: working; stop with Ctrl-C or SIGTERM")
        try:
            done = work(stop, interval, once=not loop)
        except KeyboardInterrupt:
            click.echo("exports: interrupted; the job in hand restarts after its lease")
            return
    click.echo(f"exports: {done} written")


def _counts(counts: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"


def init_app(app: Flask) -> None:
    from .cli_api import api_token_group
    from .cli_dashboard import dashboard_group
    from .cli_sla import notices_group, sla_group
    from .cli_tickets import tickets_group

    for command in (
        seed_command,
        seed_bulk_command,
        staff_group,
        faq_group,
        products_group,
        outbox_group,
        loyalty_group,
        whatsapp_group,
        tracking_group,
        mail_group,
        exports_group,
        sla_group,
        api_token_group,
        tickets_group,
        notices_group,
        dashboard_group,
    ):
        app.cli.add_command(command)
