"""The back office: Flask-Admin, built per app so test apps never share views."""

from __future__ import annotations

from flask import Flask
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme

from ..web import csp_nonce
from .base import HomeView


def init_admin(app: Flask) -> Admin:
    admin = Admin(
        app,
        name="carebox",
        url="/admin",
        index_view=HomeView(url="/admin", name="Home"),
        theme=Bootstrap4Theme(
            swatch=app.config["FLASK_ADMIN_SWATCH"], fluid=app.config["FLASK_ADMIN_FLUID_LAYOUT"]
        ),
        csp_nonce_generator=csp_nonce,
    )
    return admin
