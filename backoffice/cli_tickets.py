"""`carebox tickets ...`: the tickets' own workers."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from .cli_worker import log_to_stderr, stop_on_signal


@click.group("tickets")
def tickets_group():
    """Tickets: the auto-finish worker."""


@tickets_group.command("auto-finish")
@click.option("--loop", is_flag=True, help="Keep working until SIGTERM or Ctrl-C.")
@click.option(
    "--interval",
    type=click.FloatRange(0.1, 3600),
    default=300.0,
    show_default=True,
    help="Seconds between passes.",
)
@with_appcontext
def auto_finish(loop: bool, interval: float):
    """Warn, then finish, the tickets that waited CAREBOX_AUTO_FINISH_DAYS working days for
    the customer (one pass, or --loop). Safe with several workers."""
    from .domain import autofinish

    if not loop:
        log_to_stderr()
        click.echo(str(autofinish.run()))
        return
    with stop_on_signal() as stop:
        click.echo(
            f"auto-finish: after {autofinish.days()} working days; stop with Ctrl-C or SIGTERM"
        )
        try:
            autofinish.run_loop(interval, stop, on_report=lambda r: click.echo(str(r)))
        except KeyboardInterrupt:
            click.echo("auto-finish: interrupted; the ticket in hand was rolled back")
            return
    click.echo("auto-finish: stopped")
