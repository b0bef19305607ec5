"""The production web stack as shipped: deploy/nginx/carebox.conf (only ports and paths
changed, see servers.site_for_test) in front of gunicorn with deploy/gunicorn.conf.py,
real processes on free ports.

The slow-client pair shows the before and after of issue 9 item 15: fifty connections
that dribble their headers hold every gunicorn thread, so nobody else gets an answer;
behind nginx the same fifty cost nginx fifty idle sockets and everybody is served.
The waits below are liveness bounds (an answer within seconds where one takes
milliseconds, none at all for seconds where one would take milliseconds), not speed
measurements.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import threading
import time
import zlib
from pathlib import Path

import pytest

from backoffice.config import Config

from .servers import (
    SERVER_NAME,
    SITE_FILE,
    Gunicorn,
    carebox_env,
    carebox_nginx,
    http_get,
    https_connection,
)

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

# One worker of four threads, whatever the machine's core count: a worker is stalled once
# each of its threads holds a dribbling client; more workers only take more dribblers
# (workers x threads; a worker accepts connections greedily, so a burst may land in one).
WEB_ENV = {"GUNICORN_WORKERS": "1", "GUNICORN_THREADS": "4"}
DRIBBLERS = 50


# --- fixtures: carebox, and a probe app that shows what reaches it --------------------


@pytest.fixture(scope="module")
def carebox_database(tmp_path_factory) -> str:
    from backoffice import create_app
    from backoffice.extensions import db
    from backoffice.seed import seed_base

    url = f"sqlite:///{tmp_path_factory.mktemp('deploy-db') / 'carebox.db'}"
    app = create_app({"ENV_NAME": "testing", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        db.create_all()
        seed_base()
        db.session.commit()
        db.engine.dispose()
    return url


@pytest.fixture(scope="module")
def web(carebox_database):
    with Gunicorn(env=carebox_env(carebox_database, **WEB_ENV)) as server:
        yield server


@pytest.fixture(scope="module")
def edge(web):
    with carebox_nginx(web.port) as server:
        yield server


@pytest.fixture(scope="module")
def probe_web():
    with Gunicorn("tests.wsgi_probe:app", env={"GUNICORN_WORKERS": "1"}) as server:
        yield server


@pytest.fixture(scope="module")
def probe_edge(probe_web):
    with carebox_nginx(probe_web.port) as server:
        yield server


def https(server, method="GET", path="/", body=None, headers=None, timeout=10.0):
    """(status, headers, body) of one request to the nginx under test."""
    conn = https_connection(server.ports["HTTPS"], timeout=timeout)
    try:
        conn.request(method, path, body=body, headers={"Host": SERVER_NAME, **(headers or {})})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


# --- slow clients ---------------------------------------------------------------------


class Dribblers:
    """`count` connections that send a request line, then one header line every
    `interval` seconds, and never finish the header."""

    def __init__(self, connect, count=DRIBBLERS, interval=0.5):
        self.connect, self.count, self.interval = connect, count, interval
        self.socks: list[socket.socket] = []
        self.open = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drip, daemon=True)

    def __enter__(self):
        for _ in range(self.count):
            sock = self.connect()
            sock.sendall(f"GET / HTTP/1.1\r\nHost: {SERVER_NAME}\r\n".encode())
            self.socks.append(sock)
        self.open = len(self.socks)
        self._thread.start()
        time.sleep(1.0)  # let the server take them in
        return self

    def _drip(self):
        while not self._stop.wait(self.interval):
            still = 0
            for sock in self.socks:
                try:
                    sock.sendall(b"X-Slow: 1\r\n")
                    still += 1
                except OSError:
                    pass
            self.open = still

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        for sock in self.socks:
            sock.close()


def _plain(port):
    return lambda: socket.create_connection(("127.0.0.1", port), timeout=30)


def _tls(port):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE

    def connect():
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        return context.wrap_socket(sock, server_hostname=SERVER_NAME)

    return connect


class Probe(threading.Thread):
    """An ordinary visitor asking for the home page, in the background."""

    def __init__(self, request):
        super().__init__(daemon=True)
        self.request = request
        self.status = None
        self.done = threading.Event()

    def run(self):
        try:
            self.status = self.request()
        except OSError as exc:
            self.status = exc
        self.done.set()


def test_fifty_dribbling_clients_stall_gunicorn_alone(web):
    with Dribblers(_plain(web.port)) as slow:
        probe = Probe(lambda: http_get(web.port, "/", host=SERVER_NAME, timeout=60)[0])
        probe.start()
        stalled = not probe.done.wait(5.0)
        still_dribbling = slow.open
    # Once the slow clients go away, the visitor is served: it waited, nothing broke.
    assert probe.done.wait(30.0) and probe.status == 200
    assert stalled, "gunicorn answered while every thread was held by a dribbling client"
    assert still_dribbling == DRIBBLERS


def test_behind_nginx_dribbling_clients_stall_nobody(edge):
    with Dribblers(_tls(edge.ports["HTTPS"])) as slow:
        probe = Probe(lambda: https(edge, timeout=60)[0])
        probe.start()
        served = probe.done.wait(10.0)
        still_dribbling = slow.open
    assert served and probe.status == 200
    assert still_dribbling == DRIBBLERS  # they were all still connected meanwhile


# --- the rest of the site file --------------------------------------------------------


def test_app_behind_tls_gets_https_and_the_client_address(probe_edge):
    status, _, body = https(
        probe_edge,
        path="/headers",
        headers={
            "X-Forwarded-Host": "evil.example",
            "X-Forwarded-For": "203.0.113.9",
            "X-Forwarded-Proto": "http",
            "X-Forwarded-Port": "81",
            "X-Forwarded-Prefix": "/evil",
            "Forwarded": "host=evil.example",
        },
    )
    seen = json.loads(body)
    assert status == 200
    assert seen["HTTP_HOST"] == SERVER_NAME
    # Overwritten with what nginx saw, never the client's own claims.
    assert seen["HTTP_X_FORWARDED_FOR"] == "127.0.0.1"
    assert seen["HTTP_X_FORWARDED_PROTO"] == "https"
    assert seen["wsgi.url_scheme"] == "https"
    for dropped in ("X_FORWARDED_HOST", "X_FORWARDED_PORT", "X_FORWARDED_PREFIX", "FORWARDED"):
        assert f"HTTP_{dropped}" not in seen, dropped


def test_carebox_behind_nginx_knows_it_is_https(edge):
    status, headers, _ = https(edge)
    assert status == 200
    assert headers["strict-transport-security"].startswith("max-age=")
    assert "secure" in headers["set-cookie"].lower()
    assert headers.get("server") == "nginx"  # no version


def test_other_hosts_are_refused(probe_edge):
    # Right certificate name, wrong Host: the catch-all server closes without answering.
    with pytest.raises((ConnectionError, OSError)):
        https(probe_edge, path="/headers", headers={"Host": "evil.example"})
    # Unknown TLS name: no handshake at all.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    port = probe_edge.ports["HTTPS"]
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
        pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME"),
    ):
        context.wrap_socket(sock, server_hostname="evil.example")
    # Plain http, unknown Host: closed without an answer.
    with pytest.raises((ConnectionError, OSError)):
        http_get(probe_edge.ports["HTTP"], "/headers", host="evil.example")


def test_plain_http_redirects_to_https(probe_edge):
    status, headers, _ = http_get(probe_edge.ports["HTTP"], "/faq?q=x", host=SERVER_NAME)
    assert status == 301
    assert headers["Location"] == f"https://{SERVER_NAME}/faq?q=x"


def _nginx_size(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kKmMgG]?)", value).groups()
    return int(number) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit.lower()]


def test_upload_limit_is_the_apps(probe_edge):
    limit = _nginx_size(re.search(r"client_max_body_size (\S+);", SITE_FILE.read_text())[1])
    assert limit == Config.MAX_CONTENT_LENGTH
    status, _, body = https(probe_edge, "POST", "/upload", body=b"x" * limit)
    assert (status, body) == (200, str(limit).encode())  # reaches the app whole
    status, headers, body = https(probe_edge, "POST", "/upload", body=b"x" * (limit + 1))
    assert status == 413
    assert b"5 MB" in body and 'lang="id"' in body.decode() and 'lang="en"' in body.decode()


def test_text_is_compressed_and_static_files_come_from_disk(edge):
    status, headers, body = https(edge, headers={"Accept-Encoding": "gzip"})
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert b"<html" in zlib.decompress(body, 16 + zlib.MAX_WBITS)

    static = Path(__file__).resolve().parent.parent / "backoffice" / "static" / "portal.css"
    status, headers, body = https(
        edge, path="/static/portal.css", headers={"Accept-Encoding": "gzip"}
    )
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert zlib.decompress(body, 16 + zlib.MAX_WBITS) == static.read_bytes()
    assert "max-age=604800" in headers["cache-control"]
    assert "content-security-policy" not in headers  # served by nginx, not by the app
    status, headers, _ = https(
        edge, path="/admin/static/bootstrap/bootstrap4/css/bootstrap.min.css"
    )
    assert status == 200 and "content-security-policy" not in headers
    assert https(edge, path="/static/no-such-file.css")[0] == 404


def test_while_gunicorn_is_down_visitors_get_503_with_retry_after(probe_web, probe_edge):
    probe_web.stop()
    try:
        status, headers, body = https(probe_edge, path="/headers")
        assert status == 503
        assert headers["retry-after"] == "30"
        assert 'lang="id"' in body.decode() and 'lang="en"' in body.decode()
    finally:
        probe_web.start()
    assert https(probe_edge, path="/headers")[0] == 200


@pytest.mark.parametrize(
    ("worker_class", "complete"), [("gthread", True), ("sync", False)], ids=["gthread", "sync"]
)
def test_a_long_download_outlives_the_worker_timeout_only_with_gthread(worker_class, complete):
    """Why deploy/gunicorn.conf.py picks gthread: a sync worker is killed once one request
    runs past `timeout` (a large export was cut at 30 s, silently). Here timeout is 2 s
    and the answer streams for 5 s."""
    # (gunicorn turns sync into gthread when threads > 1.)
    env = {"GUNICORN_WORKERS": "1", "GUNICORN_TIMEOUT": "2", "GUNICORN_THREADS": "1"}
    with Gunicorn("tests.wsgi_probe:app", "--worker-class", worker_class, env=env) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(b"GET /stream?seconds=5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        log = server.log_tail(200)
    assert f"Using worker: {worker_class}" in log
    assert data.startswith(b"HTTP/1.1 200")  # the status went out before the cut
    assert (b"END\n" in data) is complete
    assert ("WORKER TIMEOUT" in log) is not complete
