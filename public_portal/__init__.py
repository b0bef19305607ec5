"""The customer portal blueprint."""

from flask import Flask

from .email_links import bp as email_links_bp
from .views import bp


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(email_links_bp)
