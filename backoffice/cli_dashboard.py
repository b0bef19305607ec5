"""`carebox dashboard refresh`: the master dashboard's figures, computed ahead of the page
(views/dashboard_snapshot.py)."""

from __future__ import annotations

import click

from .cli_worker import stop_on_signal
from .extensions import db


@click.group("dashboard")
def dashboard_group():
    """The master admin's home dashboard."""


@dashboard_group.command("refresh")
@click.option("--loop", is_flag=True, help="Keep refreshing until SIGTERM or Ctrl-C.")
@click.option(
    "--interval",
    type=click.FloatRange(1, 3600),
    default=60.0,
    show_default=True,
    help="Seconds between rounds.",
)
def dashboard_refresh(loop: bool, interval: float):
    """Compute the last 30 days' figures and store them (once, or every --interval).
    Without this worker the first home page after they went stale computes them."""
    from .views import dashboard_snapshot

    with stop_on_signal() as stop:
        while True:
            data = dashboard_snapshot.refresh()
            db.session.commit()
            click.echo(f"dashboard: {data['total']} tickets in 30 days, at {data['computed_at']}")
            if not loop or stop.wait(interval):
                break
