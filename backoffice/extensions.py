"""Unbound extension objects; `create_app` binds each with `init_app`."""

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_security import Security
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData, String
from sqlalchemy.orm import DeclarativeBase, registry

from .replica import RoutingSession

# Stable constraint names, so Alembic can alter them on SQLite (batch mode) and MariaDB.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    registry = registry(
        metadata=MetaData(naming_convention=NAMING_CONVENTION),
        # MySQL needs a length on every VARCHAR (docs/architecture.md §13, trap 10).
        type_annotation_map={str: String(255)},
    )


# RoutingSession sends the SELECTs of replica.heavy_reads() to DATABASE_REPLICA_URL.
db = SQLAlchemy(model_class=Base, session_options={"class_": RoutingSession})
migrate = Migrate()
csrf = CSRFProtect()
security = Security()
babel = Babel()
limiter = Limiter(key_func=get_remote_address)
