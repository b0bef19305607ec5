"""The database down while a mail is delivered: 451 (the MTA keeps it), then delivered once.

A private mariadbd (tests/servers.py) is killed mid-test and started again on the same
port; the machine's own MariaDB is never touched.
"""

from __future__ import annotations

import smtplib

import pytest
from sqlalchemy import func, select

from backoffice import create_app
from backoffice.extensions import db
from backoffice.models import InboundEmail, InboundStatus, MessageChannel, TicketMessage

from .factories import Factories
from .mail_support import Receiver, corpus, message_id
from .servers import MariaDB

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture(scope="module")
def server():
    with MariaDB() as running:
        yield running


@pytest.fixture(scope="module")
def app(server, tmp_path_factory):
    server.create_database("carebox")
    app = create_app(
        {
            "ENV_NAME": "testing",
            "SQLALCHEMY_DATABASE_URI": server.url("carebox"),
            "UPLOAD_FOLDER": str(tmp_path_factory.mktemp("uploads")),
            # What production sets (config.py): a connection that died with the
            # server is noticed and replaced, not handed out.
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "pool_recycle": 280},
        }
    )
    from backoffice.seed import seed_base

    with app.app_context():
        db.create_all()
        seed_base()
        db.session.commit()
    yield app
    with app.app_context():
        db.engine.dispose()


def _count(model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def test_database_down_during_delivery_is_retried_by_the_mta_then_delivered_once(app, server):
    with app.app_context():
        Factories(db).user(email="siti@example.net")
        db.session.commit()
        db.session.remove()
    raw = corpus("plain_new.eml", sender="siti@example.net", mid=message_id())
    with Receiver(app) as receiver:
        server.kill()
        with receiver.client() as client, pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("siti@example.net", ["care@reply.carebox.example"], raw)
        assert refused.value.smtp_code == 451
        assert refused.value.smtp_error.startswith(b"4.3.0")

        server.start()  # the same port: the MTA's retry reaches it
        assert receiver.deliver(raw, mail_from="siti@example.net")[0] == 250
        assert receiver.deliver(raw, mail_from="siti@example.net")[0] == 250  # resent: once
    with app.app_context():
        assert _count(InboundEmail) == 1
        assert _count(InboundEmail, InboundEmail.status == InboundStatus.POSTED) == 1
        assert _count(TicketMessage, TicketMessage.channel == MessageChannel.EMAIL) == 1
        db.session.remove()
