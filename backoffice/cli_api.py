"""`carebox api-token create|list|revoke`: the JSON API's bearer tokens (docs/api.md)."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from .domain import DomainError, api_tokens
from .extensions import db


@click.group("api-token")
def api_token_group():
    """Bearer tokens of the JSON API (/api/v1)."""


@api_token_group.command("create")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(sorted(api_tokens.SCOPES)),
    help="What the token may do (repeatable).",
)
@with_appcontext
def api_token_create(name: str, scopes: tuple[str, ...]):
    """Create the token NAME and print it, once: only its hash is stored."""
    try:
        token, secret = api_tokens.create(name, scopes)
    except DomainError as exc:
        db.session.rollback()
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    db.session.commit()
    click.echo(secret)
    click.echo(
        f"Token {token.name!r} ({token.scopes}) created. It is shown only now: store it "
        "where the calling system keeps its secrets.",
        err=True,
    )


@api_token_group.command("revoke")
@click.argument("name")
@with_appcontext
def api_token_revoke(name: str):
    """Revoke the token NAME: from now on it is refused (401)."""
    try:
        token = api_tokens.revoke(name)
    except DomainError as exc:
        db.session.rollback()
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    db.session.commit()
    click.echo(f"Token {token.name!r} revoked.")


@api_token_group.command("list")
@with_appcontext
def api_token_list():
    """Every token: name, scopes, created, revoked (never the secret)."""
    tokens = api_tokens.all_tokens()
    if not tokens:
        click.echo("No API tokens.")
        return
    for token in tokens:
        state = f"revoked {token.revoked_at:%Y-%m-%d %H:%M}" if token.revoked_at else "active"
        click.echo(
            f"{token.name:30} {token.scopes:20} created {token.created_at:%Y-%m-%d %H:%M}  {state}"
        )
