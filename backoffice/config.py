"""Configuration classes. Read when the app is created, never at import."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlsplit

from flask_babel import lazy_gettext as _l
from limits import parse_many

ROOT = Path(__file__).resolve().parent.parent


# Per-route limits (Flask-Limiter notation) that the environment may override.
RATE_LIMITS = (
    "RATELIMIT_LOGIN",
    "RATELIMIT_TICKET_FILE",
    "RATELIMIT_TICKET_REPLY",
    "RATELIMIT_FAQ_VOTE",
    "RATELIMIT_TRACK",
    "RATELIMIT_WHATSAPP_WEBHOOK",
    "RATELIMIT_PASSWORD_ACCOUNT",
    "RATELIMIT_ORDER",
    "RATELIMIT_FAQ_VOTE_ENTRY",
    "RATELIMIT_API",
)


class ConfigError(RuntimeError):
    """The configuration cannot run; the message says what to set."""


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


class Config:
    """Defaults shared by every environment; `from_env` overlays the environment."""

    SECRET_KEY: str | None = None
    INSTANCE_PATH = str(ROOT / "instance")
    SQLALCHEMY_DATABASE_URI = ""
    # No pool_pre_ping: a connection is pinged only after idleness (backoffice/connections.py).
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_recycle": 280}
    SQLALCHEMY_TRACK_MODIFICATIONS = False
    MAX_CONTENT_LENGTH = 6 * 1024 * 1024  # 5 MB attachments plus the form around them
    ATTACHMENT_MAX_BYTES = 5 * 1024 * 1024
    UPLOAD_FOLDER = ""  # default: instance/uploads

    # Sessions and cookies
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    PERMANENT_SESSION_LIFETIME = 60 * 60 * 12

    # CSRF: on for every form, Flask-Admin's included (docs/architecture.md §13, trap 1).
    WTF_CSRF_ENABLED = True
    WTF_CSRF_CHECK_DEFAULT = False  # Flask-Security protects its own endpoints
    WTF_CSRF_TIME_LIMIT = 60 * 60 * 12

    # Flask-Security-Too
    SECURITY_PASSWORD_SALT: str | None = None
    SECURITY_PASSWORD_HASH = "argon2"  # noqa: S105
    # argon2id with the lowest-memory parameters of OWASP's Password Storage Cheat Sheet
    # (m=7 MiB, t=5, p=1; the sheet lists it beside m=19 MiB/t=2 and m=12 MiB/t=3 as an equal
    # level of defence, trading memory for passes: about the same CPU time per hash), not
    # argon2-cffi's defaults (m=64 MiB, t=3, p=4). Each login holds `m` while it verifies:
    # four concurrent logins on one gthread worker took it from ~120 MB to ~380 MB with the
    # defaults, and with m=19 MiB a sign-in on a worker that had served every page was its
    # peak, 148 of the 150 MB budget (issue 16 item 9; docs/deploy.md "Memory"). Hashes made
    # with other parameters still verify, and passlib's needs_update (memory cost differs)
    # makes Flask-Security rehash them with these on the next successful login.
    SECURITY_PASSWORD_HASH_PASSLIB_OPTIONS = {
        "argon2__type": "ID",
        "argon2__memory_cost": 7 * 1024,  # KiB
        "argon2__rounds": 5,  # time cost
        "argon2__parallelism": 1,
    }
    # Argon2 computations at once per process (backoffice/password_hashing.py): each holds
    # 7 MiB while it runs, so 4 sign-ins at once on a 4-thread worker would cost 28 MB.
    CAREBOX_PASSWORD_HASHES_AT_ONCE = 1
    SECURITY_REGISTERABLE = True
    SECURITY_REGISTER_URL = "/register"
    SECURITY_LOGIN_URL = "/login"
    SECURITY_LOGOUT_URL = "/logout"
    SECURITY_RESET_URL = "/reset"
    SECURITY_CHANGE_URL = "/account/password"
    SECURITY_RECOVERABLE = True
    SECURITY_CHANGEABLE = True
    SECURITY_TRACKABLE = True
    # No page tells whether an address has an account (docs/architecture.md §13, trap 15): login,
    # reset and registration answer alike. So a new account is confirmed from its address
    # before it can sign in (a registration for a known address gets the same answer,
    # and the address a notice: domain.accounts.registration_for_existing_address).
    SECURITY_RETURN_GENERIC_RESPONSES = True
    SECURITY_CONFIRMABLE = True
    SECURITY_CONFIRM_URL = "/confirm"
    SECURITY_SEND_REGISTER_EMAIL = True  # the welcome email carries the confirmation link
    SECURITY_EMAIL_SUBJECT_REGISTER = _l("Confirm your email address for carebox")
    SECURITY_USE_REGISTER_V2 = True
    SECURITY_LOGOUT_METHODS = ["POST"]
    SECURITY_LOGOUT_CSRF = True
    SECURITY_CSRF_IGNORE_UNAUTH_ENDPOINTS = False
    SECURITY_EMAIL_VALIDATOR_ARGS = {"check_deliverability": False}
    # Staff land in the back office, customers on the portal (public_portal.content).
    SECURITY_POST_LOGIN_VIEW = "portal.after_login"
    SECURITY_POST_LOGOUT_VIEW = "/"
    SECURITY_POST_REGISTER_VIEW = "/"
    SECURITY_MSG_UNAUTHORIZED = ("You do not have permission to view this resource.", "error")
    SECURITY_FLASH_MESSAGES = True
    SECURITY_EMAIL_SENDER = "carebox <no-reply@carebox.example>"
    SECURITY_USERNAME_ENABLE = False
    SECURITY_PASSWORD_LENGTH_MIN = 8
    SECURITY_PASSWORD_CHECK_BREACHED = False
    # The password policy (backoffice/passwords.py): zxcvbn scores 0-4, staff stricter.
    CAREBOX_PASSWORD_SCORE_CUSTOMER = 2
    CAREBOX_PASSWORD_SCORE_STAFF = 3
    CAREBOX_PASSWORD_LENGTH_STAFF = 12
    # Flask-Security's default ({"private": True, ...}) goes through werkzeug's
    # cache_control[...] = value and comes out as "private=True, no-store=True", which
    # caches ignore; None makes a bare directive: "private, no-store".
    SECURITY_CACHE_CONTROL = {"private": None, "no-store": None}

    # Mail (SMTP); unset MAIL_SERVER in development logs mail instead of sending.
    MAIL_SERVER = ""
    MAIL_PORT = 25
    MAIL_USE_TLS = False
    MAIL_USE_SSL = False
    MAIL_USERNAME: str | None = None
    MAIL_PASSWORD: str | None = None
    MAIL_DEFAULT_SENDER = "carebox <no-reply@carebox.example>"
    MAIL_TIMEOUT = 10

    # Rate limits (memory by default; redis://… when several processes serve)
    RATELIMIT_STORAGE_URI = "memory://"
    # No X-RateLimit-* headers: Flask-Limiter reads the counter and its expiry back for
    # them on every limited answer, two Redis round trips more per request (public
    # tracking's two limits were four round trips, now two: one per limit). A 429 still
    # says when to come back (Retry-After, web.retry_after_limit).
    RATELIMIT_HEADERS_ENABLED = False
    # Redis down never stops the site (docs/architecture.md §13, trap 16): limits fail
    # open onto each process's memory (logged as "Rate limit storage unreachable"), go
    # back to Redis once it answers, and an error while counting after a view committed
    # is logged, never turned into an error page. A hung Redis costs at most half a second.
    RATELIMIT_SWALLOW_ERRORS = True
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    RATELIMIT_STORAGE_OPTIONS = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
    RATELIMIT_LOGIN = "10 per minute;100 per day"
    # Password checks about one account (login, change, /verify, reset), from any address.
    RATELIMIT_PASSWORD_ACCOUNT = "20 per hour;50 per day"  # noqa: S105 (a rate, not a secret)
    RATELIMIT_ORDER = "20 per hour"  # orders placed, per account
    RATELIMIT_TICKET_FILE = "10 per hour"
    RATELIMIT_TICKET_REPLY = "30 per 10 minutes"
    # Per address: generous, as phones on one carrier often share an address (CGNAT).
    RATELIMIT_FAQ_VOTE = "120 per hour"
    # Anonymous answers counted per entry and address (the session cookie can be cleared).
    RATELIMIT_FAQ_VOTE_ENTRY = "1 per day"
    RATELIMIT_TRACK = "30 per minute;300 per hour"  # public /track, per address
    # Meta delivers from a handful of addresses: generous, a flood guard only.
    RATELIMIT_WHATSAPP_WEBHOOK = "1200 per minute"
    RATELIMIT_API = "120 per minute"  # /api/v1 requests per token (a batch is one)

    # i18n
    BABEL_DEFAULT_LOCALE = "id"
    BABEL_DEFAULT_TIMEZONE = "Asia/Jakarta"
    LANGUAGES = ("id", "en")
    BABEL_TRANSLATION_DIRECTORIES = str(ROOT / "backoffice" / "translations")
    # Flask-Security's own words: our flask_security catalogue first (its package
    # has no Indonesian), then its built-in ones. Flask-Admin's come from the
    # same folder (Admin(translations_path=...)), WTForms' through backoffice/i18n.py.
    SECURITY_I18N_DIRNAME = [BABEL_TRANSLATION_DIRECTORIES, "builtin"]

    # Flask-Admin. A swatch without a Google Fonts @import: nothing comes from a
    # CDN (the CSP would block it anyway). Also font-free: default, litera, pulse, slate.
    FLASK_ADMIN_SWATCH = "cerulean"
    FLASK_ADMIN_FLUID_LAYOUT = True

    # carebox
    PROXY_FIX = 0  # how many trusted reverse proxies set X-Forwarded-* (CAREBOX_PROXY_FIX)
    CAREBOX_SLA_HOURS: dict = {}  # working hours per priority (domain/sla.py)
    # The department whose working calendar a ticket without a department runs on.
    CAREBOX_DEFAULT_CALENDAR = "CS"
    CAREBOX_SEED_HOURS = True  # seeding gives departments seed/departments.yaml's hours
    CAREBOX_SLA_WARNING_EMAIL = False  # email the 80 % SLA warnings (the home page counts them)
    # A ticket waiting this many working days for the customer is finished by carebox,
    # after a warning one working day before (domain/autofinish.py); 0 turns it off.
    CAREBOX_AUTO_FINISH_DAYS = 5
    # The site's address: every link in an email, and in production the only Host
    # a request may name (TRUSTED_HOSTS), come from it. Required in production.
    CAREBOX_BASE_URL = ""
    # More Host names production answers to (a health check by address, an internal name).
    CAREBOX_TRUSTED_HOSTS: list = []
    CAREBOX_REPORT_BATCH = 2000
    # A MariaDB replica for heavy reads (backoffice/replica.py); empty: the primary only.
    DATABASE_REPLICA_URL = ""
    CAREBOX_REPLICA_MAX_LAG = 30.0  # seconds behind the primary before it is passed over
    CAREBOX_REPLICA_TIMEOUT = 2.0  # seconds to connect to it / answer its health check
    CAREBOX_REPLICA_RETRY_SECONDS = 30.0  # after it could not be reached
    # Email outbox worker (backoffice/channels/mailer.py); see DEFAULT_OUTBOX there for each key.
    CAREBOX_OUTBOX: dict = {}
    # Signed links in emails: how long an unsubscribe / rating link stays valid (days).
    CAREBOX_UNSUBSCRIBE_LINK_DAYS = 180
    CAREBOX_RATING_LINK_DAYS = 30
    # How long the link that claims a contact-only customer record stays valid (hours).
    CAREBOX_CLAIM_LINK_HOURS = 48
    # Inbound email (backoffice/channels/email_in.py): replies go to reply+TOKEN@ this
    # domain, which the mail server hands to `carebox mail receive`. Unset: no Reply-To.
    CAREBOX_REPLY_DOMAIN = ""
    # The largest message `carebox mail receive` accepts (bytes; larger: 552). Keep it
    # under MariaDB's max_allowed_packet (16 MB by default): the raw message is stored.
    CAREBOX_MAIL_MAX_BYTES = 15 * 1024 * 1024
    # Mails from one sender in an hour above which the rest are not posted (logged).
    CAREBOX_MAIL_MAX_PER_HOUR = 20
    # A hosted mailbox `carebox mail fetch` reads: imaps://user:password@host/INBOX.
    CAREBOX_IMAP_URL = ""
    # Loyalty segment thresholds (backoffice/domain/loyalty.py documents each rule);
    # keys given here override DEFAULT_THRESHOLDS there.
    CAREBOX_LOYALTY: dict = {}
    # WhatsApp Business Cloud API (backoffice/channels/whatsapp*.py, README "WhatsApp").
    # The channel is on only when the first four are set; otherwise its URLs answer 404.
    WHATSAPP_APP_SECRET = ""  # the Meta app's secret: signs every webhook delivery
    WHATSAPP_VERIFY_TOKEN = ""  # chosen by you, typed into Meta's webhook form
    WHATSAPP_TOKEN = ""  # a system user's access token (whatsapp_business_messaging)
    WHATSAPP_PHONE_NUMBER_ID = ""  # the sending number's id (not the number itself)
    WHATSAPP_API_BASE = "https://graph.facebook.com/v21.0"
    WHATSAPP_TIMEOUT = 10.0  # seconds for one Graph API call
    # The approved template a staff reply goes out as outside the 24-hour window; its
    # body takes {{1}} the ticket number and {{2}} the reply (shortened). Empty: none.
    WHATSAPP_REPLY_TEMPLATE = ""
    # The queues' workers (channels/whatsapp_in.py DEFAULT_QUEUE lists each key).
    WHATSAPP_QUEUE: dict = {}
    # The two service-indicator letters of every new resi (UPU S10; domain/shipments/resi.py).
    CAREBOX_RESI_PREFIX = "CB"
    # A moving parcel with no event for this many days is "stuck" (domain/situations.py).
    CAREBOX_STUCK_DAYS = 3
    # Seeding adds seed/departments.yaml's catch-all route (every ticket no other rule
    # takes goes to Customer Service); the master admin may delete it to triage by hand.
    CAREBOX_SEED_CATCH_ALL = True

    @classmethod
    def from_env(cls) -> dict:
        """Settings the environment overrides (docs/architecture.md §5)."""
        env = os.environ
        out: dict = {}
        for key in (
            "SECRET_KEY",
            "SECURITY_PASSWORD_SALT",
            "RATELIMIT_STORAGE_URI",
            "BABEL_DEFAULT_LOCALE",
            "MAIL_SERVER",
            "CAREBOX_REPLY_DOMAIN",
            "MAIL_USERNAME",
            "MAIL_PASSWORD",
            "MAIL_DEFAULT_SENDER",
            "CAREBOX_BASE_URL",
            "UPLOAD_FOLDER",
            "DATABASE_REPLICA_URL",
            "CAREBOX_RESI_PREFIX",
            "WHATSAPP_APP_SECRET",
            "WHATSAPP_VERIFY_TOKEN",
            "WHATSAPP_TOKEN",
            "WHATSAPP_PHONE_NUMBER_ID",
            "WHATSAPP_API_BASE",
            "WHATSAPP_REPLY_TEMPLATE",
            "CAREBOX_DEFAULT_CALENDAR",
            "CAREBOX_EXPORT_DIR",
        ):
            if env.get(key):
                out[key] = env[key]
        for key in RATE_LIMITS:
            if env.get(key):
                try:
                    parse_many(env[key])
                except ValueError as exc:
                    raise ConfigError(
                        f"{key}={env[key]!r} is not a rate limit: write e.g. '10 per minute' "
                        "or '10 per minute;100 per day'"
                    ) from exc
                out[key] = env[key]
        if env.get("CAREBOX_TRUSTED_HOSTS"):
            hosts = env["CAREBOX_TRUSTED_HOSTS"].split(",")
            out["CAREBOX_TRUSTED_HOSTS"] = [h.strip() for h in hosts if h.strip()]
        if env.get("DATABASE_URL"):
            out["SQLALCHEMY_DATABASE_URI"] = env["DATABASE_URL"]
        if env.get("CAREBOX_PROXY_FIX"):
            out["PROXY_FIX"] = int(env["CAREBOX_PROXY_FIX"])
        if env.get("MAIL_PORT"):
            out["MAIL_PORT"] = int(env["MAIL_PORT"])
        for key in ("MAIL_USE_TLS", "MAIL_USE_SSL", "SESSION_COOKIE_SECURE"):
            if key in env:
                out[key] = _env_bool(key, False)
        if "SESSION_COOKIE_SECURE" in out:
            out["REMEMBER_COOKIE_SECURE"] = out["SESSION_COOKIE_SECURE"]
        for key in (
            "CAREBOX_REPLICA_MAX_LAG",
            "CAREBOX_REPLICA_TIMEOUT",
            "CAREBOX_REPLICA_RETRY_SECONDS",
            "CAREBOX_EXPORT_LEASE_SECONDS",
            "CAREBOX_EXPORT_PROGRESS_SECONDS",
            "CAREBOX_EXPORT_KEEP_HOURS",
        ):
            if env.get(key):
                try:
                    out[key] = float(env[key])
                except ValueError as exc:
                    raise ConfigError(f"{key}={env[key]!r} is not a number of seconds") from exc
        if env.get("WHATSAPP_TIMEOUT"):
            try:
                out["WHATSAPP_TIMEOUT"] = float(env["WHATSAPP_TIMEOUT"])
            except ValueError as exc:
                raise ConfigError(
                    f"WHATSAPP_TIMEOUT={env['WHATSAPP_TIMEOUT']!r} is not a number of seconds"
                ) from exc
        for key in (
            "CAREBOX_STUCK_DAYS",
            "CAREBOX_MAIL_MAX_BYTES",
            "CAREBOX_MAIL_MAX_PER_HOUR",
            "CAREBOX_EXPORT_DIRECT_MAX_ROWS",
            "CAREBOX_REPORT_BATCH",
            "CAREBOX_AUTO_FINISH_DAYS",
        ):
            if env.get(key):
                try:
                    out[key] = int(env[key])
                except ValueError as exc:
                    raise ConfigError(f"{key}={env[key]!r} is not a whole number") from exc
        if env.get("MAIL_TIMEOUT"):
            out["MAIL_TIMEOUT"] = float(env["MAIL_TIMEOUT"])
        for key in ("CAREBOX_OUTBOX", "CAREBOX_LOYALTY", "WHATSAPP_QUEUE"):
            if env.get(key):
                out[key] = json.loads(env[key])
        if env.get("CAREBOX_SLA_WARNING_EMAIL"):
            out["CAREBOX_SLA_WARNING_EMAIL"] = env["CAREBOX_SLA_WARNING_EMAIL"].lower() in (
                "1",
                "true",
                "yes",
                "on",
            )
        if env.get("CAREBOX_SLA_HOURS"):
            out["CAREBOX_SLA_HOURS"] = json.loads(env["CAREBOX_SLA_HOURS"])
        return out


class DevelopmentConfig(Config):
    DEBUG = False
    CAREBOX_BASE_URL = "http://127.0.0.1:5000"  # `make run PORT=…` sets it from the port
    SECRET_KEY = "dev-only-not-secret"  # noqa: S105
    SECURITY_PASSWORD_SALT = "dev-only-salt"  # noqa: S105
    # Served over plain http on 127.0.0.1 by `make run`.
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_SECURE = False
    CAREBOX_REPLY_DOMAIN = "reply.carebox.example"  # `carebox mail receive` on your own


class TestingConfig(DevelopmentConfig):
    TESTING = True
    SECURITY_PASSWORD_HASH = "plaintext"  # noqa: S105 (fast; argon2 is tested on its own)
    SECURITY_PASSWORD_SCHEMES = ["plaintext", "argon2"]
    RATELIMIT_ENABLED = False
    FLASK_ADMIN_RAISE_ON_VIEW_EXCEPTION = True
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    # Seeded departments get no hours, so their clocks run on wall-clock time and a test
    # does not depend on the hour it runs at; working-time tests set hours themselves.
    CAREBOX_SEED_HOURS = False
    # Tickets stay in Progress unless a test's own rule routes them (tests of the
    # catch-all turn it on).
    CAREBOX_SEED_CATCH_ALL = False


class ProductionConfig(Config):
    @classmethod
    def validate(cls, config) -> None:
        """Refuse to start without what production needs; fill in TRUSTED_HOSTS."""
        missing = [k for k in ("SECRET_KEY", "SECURITY_PASSWORD_SALT") if not config.get(k)]
        if missing:
            raise ConfigError(
                "carebox refuses to start in production without "
                + " and ".join(missing)
                + ": set them in the environment (long random strings, e.g. "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`)."
            )
        base = urlsplit(config.get("CAREBOX_BASE_URL") or "")
        if base.scheme not in ("http", "https") or not base.hostname:
            raise ConfigError(
                "carebox refuses to start in production without CAREBOX_BASE_URL, the "
                "site's address as customers type it (e.g. https://care.example.com): "
                "links in emails are built on it, and requests for other hosts are refused."
            )
        if config.get("TRUSTED_HOSTS") is None:
            config["TRUSTED_HOSTS"] = trusted_hosts(config)


def per_process_limits_warning(config, workers: int) -> str | None:
    """The warning for `workers` processes sharing `memory://` rate limits, else None.

    Each process counts on its own, so every limit is really `workers` times the
    configured one (RATELIMIT_LOGIN's 10 a minute becomes 40 with four workers).
    """
    storage = str(config.get("RATELIMIT_STORAGE_URI") or "memory://")
    if (
        workers <= 1
        or not storage.startswith("memory://")
        or not config.get("RATELIMIT_ENABLED", True)
    ):
        return None
    return (
        f"RATE LIMITS ARE PER WORKER: RATELIMIT_STORAGE_URI is {storage} and {workers} "
        f"worker processes serve, so each counts on its own and every limit (login, "
        f"password checks, ticket filing) is {workers} times what is configured. Set "
        "RATELIMIT_STORAGE_URI=redis://… (README: Configuration)."
    )


def trusted_hosts(config) -> list[str]:
    """The Host names requests may name: CAREBOX_BASE_URL's, then CAREBOX_TRUSTED_HOSTS.

    Flask answers any other Host with 400 before a view runs, so nothing can be made
    to build a link, or read a page, under a name the site does not own.
    """
    hosts = [urlsplit(config["CAREBOX_BASE_URL"]).hostname]
    for host in config.get("CAREBOX_TRUSTED_HOSTS") or []:
        if host not in hosts:
            hosts.append(host)
    return hosts


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}
