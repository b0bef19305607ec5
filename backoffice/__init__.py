"""carebox: the customer-care back office and portal of a courier company."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask
from flask.globals import _cv_request

from .config import CONFIGS, ROOT, ConfigError


class Carebox(Flask):
    """Flask, with every absolute URL built on `CAREBOX_BASE_URL`
    (docs/architecture.md §13, trap 14).

    Flask builds `url_for(..., _external=True)` from the request's Host, which the
    client chooses: a forged Host would put the attacker's site into the password
    reset email Flask-Security sends. Here absolute URLs, and every URL built outside
    a request (the outbox worker, the CLI), start with the configured base URL, as
    carebox's own email links do (`domain.links.absolute_url`). Relative URLs in a
    request are Flask's own.
    """

    def create_url_adapter(self, request):
        if request is not None:
            return super().create_url_adapter(request)
        base = urlsplit(self.config["CAREBOX_BASE_URL"])
        return self.url_map.bind(
            base.netloc, script_name=base.path or "/", url_scheme=base.scheme or "http"
        )

    def url_for(
        self, endpoint, *, _anchor=None, _method=None, _scheme=None, _external=None, **values
    ):
        ctx = _cv_request.get(None)
        if ctx is None or (ctx.url_adapter is not None and not (_external or _scheme)):
            return super().url_for(
                endpoint,
                _anchor=_anchor,
                _method=_method,
                _scheme=_scheme,
                _external=_external,
                **values,
            )
        # An absolute URL in a request, or any URL in a request whose Host was refused
        # (TRUSTED_HOSTS: Flask then has no adapter at all): build on the base URL.
        request_adapter = ctx.url_adapter
        ctx.url_adapter = self.create_url_adapter(None)
        try:
            return super().url_for(
                endpoint,
                _anchor=_anchor,
                _method=_method,
                _scheme=_scheme,
                _external=_external,
                **values,
            )
        finally:
            ctx.url_adapter = request_adapter


def create_app(config: dict | str | None = None) -> Flask:
    """Build the app. No migrations, network or prompts happen here.

    `config` is an environment name (development, testing, production) or a
    dict of overrides on top of the environment's class; the name defaults to
    `CAREBOX_ENV`, and `production` is the default: secrets are then required.
    """
    overrides = config if isinstance(config, dict) else {}
    env = (
        (config if isinstance(config, str) else None)
        or overrides.get("ENV_NAME")
        or (os.environ.get("CAREBOX_ENV", "production"))
    )
    if env not in CONFIGS:
        raise ConfigError(f"CAREBOX_ENV must be one of {', '.join(CONFIGS)}, not {env!r}.")
    app = Carebox(
        __name__,
        instance_path=os.environ.get("CAREBOX_INSTANCE_PATH") or str(ROOT / "instance"),
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "backoffice" / "static"),
    )
    cls = CONFIGS[env]
    app.config.from_object(cls)
    app.config["ENV_NAME"] = env
    app.config.from_pyfile("carebox.cfg", silent=True)
    if env != "testing":
        app.config.update(cls.from_env())
    app.config.update(overrides)
    if not app.config["SQLALCHEMY_DATABASE_URI"]:
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{Path(app.instance_path)}/carebox.db"
    if not app.config["UPLOAD_FOLDER"]:
        app.config["UPLOAD_FOLDER"] = str(Path(app.instance_path) / "uploads")
    if env == "production":
        cls.validate(app.config)
    if app.config.get("PROXY_FIX"):
        # Behind N trusted proxies: the client's address (rate limits are keyed on it)
        # and https come from X-Forwarded-*; never enable it without such a proxy.
        # X-Forwarded-Host is never trusted: links are built on CAREBOX_BASE_URL, and
        # the Host a request names is checked against TRUSTED_HOSTS as it arrives.
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = int(app.config["PROXY_FIX"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)

    from . import (
        api,
        cli,
        connections,
        i18n,
        idle_polls,
        replica,
        security_setup,
        statement_count,
        transactions,
        web,
    )
    from .channels import whatsapp
    from .domain import setup_cache  # noqa: F401 (its session events give changes a new token)
    from .extensions import babel, csrf, db, limiter, migrate

    connections.init_app(app)  # the engine options db.init_app reads
    db.init_app(app)
    connections.watch_engines(app)
    statement_count.init_app(app)  # first: its after_request runs last
    replica.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)  # before Security (docs/architecture.md §13, trap 1)
    babel.init_app(app, locale_selector=i18n.select_locale)
    i18n.init_app(app)  # after Babel: the templates' gettext
    limiter.init_app(app)
    security_setup.init_app(app)
    web.init_app(app)
    whatsapp.init_app(app)
    transactions.init_app(app)

    from public_portal import init_app as init_portal

    from .views import init_admin

    init_portal(app)
    init_admin(app)
    api.init_app(app)
    cli.init_app(app)
    idle_polls.init_app(app)  # last: its short way becomes the first before-request hook
    return app
