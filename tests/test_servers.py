"""The real-server starters of tests/servers.py do what outage tests rely on: a private
server on its own port and directory, a crash (SIGKILL) and a restart on the same port
with the data kept, a pause, and nothing left behind."""

from __future__ import annotations

import os

import pytest
import redis as redis_lib

from .servers import MariaDB, Redis, Server, ServerError


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_mariadb_crash_and_restart_keep_port_and_data():
    server = MariaDB()
    with server:
        assert server.port != 3306
        server.create_database("t")
        server.query("CREATE TABLE t.kv (k INT PRIMARY KEY, v VARCHAR(10))")
        server.query("INSERT INTO t.kv VALUES (1, 'kept')")
        port, pid = server.port, server.pid

        server.kill()
        assert not _alive(pid)
        with pytest.raises(Exception):  # noqa: B017 (any connection error: nobody listens)
            server.connect(connect_timeout=1)

        server.start()
        assert server.port == port and server.pid != pid
        assert server.query("SELECT v FROM t.kv WHERE k = 1") == [("kept",)]
        assert server.url("t") == f"mysql+pymysql://root@127.0.0.1:{port}/t?charset=utf8mb4"
        # A private server is not the machine's: it has no binary log configured.
        assert server.query("SELECT @@log_bin")[0][0] == 0
    assert not _alive(pid) and not server.dir.exists()


def test_redis_outage_and_return():
    with Redis() as server:
        client = redis_lib.Redis.from_url(server.url(), socket_timeout=1)
        client.set("k", "v")
        server.kill()
        with pytest.raises(redis_lib.ConnectionError):
            client.get("k")
        server.start()
        assert client.ping()
        assert client.get("k") is None  # nothing kept on disk, like the rate-limit store


def test_pause_holds_the_port_without_answers():
    with Redis() as server:
        server.pause()
        try:
            assert not server.ping()
        finally:
            server.resume()
        assert server.ping()


def test_a_server_that_cannot_start_says_why():
    class Broken(MariaDB):
        def argv(self):
            return [*super().argv(), "--no-such-option"]

    server = Broken()
    try:
        with pytest.raises(ServerError, match="no-such-option"):
            server.start()
        assert not server.running
    finally:
        server.close()


def test_two_servers_never_share_a_port_or_directory():
    first, second = Redis(), Redis()
    with first, second:
        assert first.port != second.port and first.dir != second.dir
        first.stop()
        assert second.ping()  # stopping one touches nothing of the other


def test_a_taken_port_is_replaced_by_a_free_one(monkeypatch):
    """Another test run may bind the port between free_port() and the server's bind."""
    import socket

    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    ports = iter([taken])

    def next_port():
        return next(ports, None) or _real_free_port()

    from . import servers

    _real_free_port = servers.free_port
    monkeypatch.setattr(servers, "free_port", next_port)
    try:
        with Redis() as server:
            assert server.port != taken and server.ping()
    finally:
        squatter.close()


def test_stop_is_safe_on_a_server_never_started():
    server = Server()
    server.stop()
    server.kill()
    server.close()
    assert not server.dir.exists()
