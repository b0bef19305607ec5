"""`carebox sla ...`: the working-time SLA's worker and the supervisor's questions;
`carebox notices digest`: the agents' notification digest (a worker of the same shape)."""

from __future__ import annotations

import click
from sqlalchemy import select

from .cli_worker import stop_on_signal
from .domain import sla
from .extensions import db
from .models import Ticket


@click.group("sla")
def sla_group():
    """Working-time SLA: warnings, recomputation, explanations."""


@sla_group.command("warn")
@click.option("--loop", is_flag=True, help="Keep warning until SIGTERM or Ctrl-C.")
@click.option("--interval", default=60.0, show_default=True, help="Seconds between rounds.")
def sla_warn(loop: bool, interval: float):
    """Warn once about each ticket past 80 % of its running clock (home count; email with
    CAREBOX_SLA_WARNING_EMAIL). Safe with several workers."""
    with stop_on_signal() as stop:
        while True:
            warned = sla.send_warnings()
            db.session.commit()
            click.echo(f"sla: {warned} warned")
            if not loop or stop.wait(interval):
                break


@sla_group.command("recompute")
@click.option(
    "--all", "everything", is_flag=True, help="Also put tickets from before working time on it."
)
def sla_recompute(everything: bool):
    """Recompute the due times of every running ticket on today's calendars (nightly)."""
    adopted = sla.adopt_all() if everything else 0
    moved = sla.calendar_changed("nightly recompute")
    db.session.commit()
    click.echo(f"sla: {moved} moved, {adopted} put on working time")


@sla_group.command("explain")
@click.argument("number")
def sla_explain(number: str):
    """The calendar, due times, pauses and holidays behind TICKET_NUMBER's SLA."""
    ticket = db.session.scalar(select(Ticket).where(Ticket.number == number.strip().upper()))
    if ticket is None:
        raise click.ClickException(f"no ticket {number}")
    for line in sla.explain(ticket):
        click.echo(line)


@click.group("notices")
def notices_group():
    """Agent notifications (domain/staff_notices.py)."""


@notices_group.command("digest")
@click.option("--loop", is_flag=True, help="Keep sending until SIGTERM or Ctrl-C.")
@click.option("--interval", default=3600.0, show_default=True, help="Seconds between rounds.")
def notices_digest(loop: bool, interval: float):
    """Queue one email per agent who switched the digest on, listing their unread
    notifications not mailed yet (through the outbox; never the same one twice)."""
    from .domain import staff_notices

    with stop_on_signal() as stop:
        while True:
            sent = staff_notices.send_digests()
            db.session.commit()
            click.echo(f"notices: {sent} digests queued")
            if not loop or stop.wait(interval):
                break
