"""Portal routes, one module per area; importing them registers them on `bp`."""

from . import account, claim, content, orders, tickets, track  # noqa: F401
from .base import bp

__all__ = ["bp"]
