"""carebox: the customer-care back office and portal of a courier company."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

from .config import CONFIGS, ROOT, ConfigError


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
    app = Flask(
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
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = int(app.config["PROXY_FIX"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    from . import cli, i18n, security_setup, web
    from .extensions import babel, csrf, db, limiter, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)  # before Security (docs/architecture.md §13, trap 1)
    babel.init_app(app, locale_selector=i18n.select_locale)
    limiter.init_app(app)
    security_setup.init_app(app)
    web.init_app(app)

    from public_portal import init_app as init_portal

    from .views import init_admin

    init_portal(app)
    init_admin(app)
    cli.init_app(app)
    return app
