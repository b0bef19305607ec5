"""Real servers a test starts, breaks and stops: mariadbd, redis-server, gunicorn, nginx.

Several test runs share this machine (other checkouts, xdist workers, CI), so every
server here
- listens on a free port of 127.0.0.1, chosen when it starts (bind to port 0); if another
  run takes the port before the server binds it, `start()` tries another one;
- keeps everything (data, sockets, logs, pid files) in its own fresh directory under
  /tmp (short: a unix socket path must fit in 107 bytes), removed by `close()`;
- runs in a process group of its own and is stopped through its pid (`stop()` TERM,
  `kill()` KILL, `pause()` STOP), never by name, so nobody else's server is touched;
- dies with the test process if pytest itself is killed (`setpriv --pdeathsig`: the
  signal follows the thread that started the server, so start servers from a fixture,
  not from a short-lived thread), and is killed at interpreter exit if still running.

    with MariaDB() as server:              # mariadb-install-db into a tmp datadir
        url = server.url("carebox")        # after server.create_database("carebox")
        server.kill(); server.start()      # crash and recovery on the same port

The machine's own MariaDB (3306) and Redis (6379) are never touched from here.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
IS_ROOT = os.geteuid() == 0


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _binary(name: str, package: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if not path:
        raise RuntimeError(
            f"{name} is not installed: `apt-get install {package}` (make test installs it)"
        )
    return path


class ServerError(RuntimeError):
    """A server did not start; the message carries the end of its log."""


_running: set[Server] = set()


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_running):
        server.kill()


class Server:
    """One server process: start, wait until it answers, stop by pid.

    Subclasses give `argv()` (and `env()`), and `ping()`, which is true once the server
    serves. `port` stays the same across restarts, so clients can reconnect.
    """

    name = "server"
    ready_timeout = 60.0
    # Words a server's log shows when its port was taken between free_port() and bind.
    port_taken = ("in use", "Bind on TCP/IP port", "EADDRINUSE")

    def __init__(self, *, port: int | None = None, directory: str | Path | None = None):
        self.port = port
        self._fixed_port = port is not None
        self._owns_dir = directory is None
        self.dir = Path(directory or tempfile.mkdtemp(prefix=f"cb-{self.name}-", dir="/tmp"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / f"{self.name}.log"
        self.proc: subprocess.Popen | None = None

    # --- what a subclass says -----------------------------------------------------------

    def argv(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict | None:
        return None

    def prepare(self) -> None:
        """Runs before every start, once the port is known (write config files here)."""

    def ping(self) -> bool:
        raise NotImplementedError

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.running else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> Server:
        if self.running:
            raise ServerError(f"{self.name} is already running (pid {self.proc.pid})")
        for _attempt in range(5):
            if not self._fixed_port:
                self.port = free_port()
            self.prepare()
            self._spawn()
            try:
                self._wait_ready()
            except ServerError as exc:
                if self._fixed_port or not any(w in str(exc) for w in self.port_taken):
                    raise
                continue  # someone took the port: try another
            # Restarts keep this port (clients reconnect to it).
            self._fixed_port = True
            return self
        raise ServerError(f"{self.name}: no free port after 5 tries")

    def _spawn(self) -> None:
        argv = self.argv()
        if shutil.which("setpriv"):
            argv = ["setpriv", "--pdeathsig", "KILL", "--", *argv]
        env = self.env()
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== start {time.strftime('%H:%M:%S')}: {' '.join(argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(  # noqa: S603 (our own argv)
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(ROOT),
                env=env,
                start_new_session=True,
            )
        _running.add(self)

    def _wait_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.ready_timeout)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                _running.discard(self)
                raise ServerError(
                    f"{self.name} exited with {self.proc.returncode} on start:\n{self.log_tail()}"
                )
            if self.ping():
                return
            time.sleep(0.1)
        self.kill()
        raise ServerError(f"{self.name} did not answer within its timeout:\n{self.log_tail()}")

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 30.0) -> None:
        """A clean shutdown (SIGTERM to the server's process group); KILL if it lingers."""
        if self.proc is None:
            return
        if self.running:
            self._signal_group(signal.SIGCONT)  # a paused server cannot shut down
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.proc.wait()
        self._signal_group(signal.SIGKILL)  # children (nginx workers) outliving their master
        _running.discard(self)

    def kill(self) -> None:
        """A crash: SIGKILL to the whole process group, no chance to clean up."""
        if self.proc is None:
            return
        self._signal_group(signal.SIGKILL)
        self.proc.wait()
        _running.discard(self)

    def pause(self) -> None:
        """SIGSTOP: the port stays open but nothing answers (a hung server)."""
        self._signal_group(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal_group(signal.SIGCONT)

    def restart(self) -> Server:
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop and remove the server's directory."""
        self.stop()
        if self._owns_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self):
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"<{type(self).__name__} port={self.port} pid={self.pid} dir={self.dir}>"


def _tcp_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# --- MariaDB --------------------------------------------------------------------------


class MariaDB(Server):
    """A private mariadbd: its own datadir (mariadb-install-db), `root` without a password
    on 127.0.0.1, utf8mb4, a small buffer pool. `options` are extra mariadbd options
    (e.g. "--log-bin=binlog", "--server-id=2"); `--no-defaults` keeps /etc/mysql out."""

    name = "mariadb"

    def __init__(self, *options: str, port=None, directory=None, ready_timeout: float = 60.0):
        super().__init__(port=port, directory=directory)
        self.options = list(options)
        self.ready_timeout = ready_timeout
        self.datadir = self.dir / "data"
        self.tmpdir = self.dir / "tmp"

    def install(self) -> None:
        """Create the system tables (once per datadir)."""
        if (self.datadir / "mysql").is_dir():
            return
        self.tmpdir.mkdir(exist_ok=True)
        argv = [
            _binary("mariadb-install-db", "mariadb-server"),
            "--no-defaults",
            f"--datadir={self.datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            f"--tmpdir={self.tmpdir}",  # never the shared /tmp: parallel installs collide
            "--innodb-log-file-size=16M",
            *(["--user=root"] if IS_ROOT else []),
        ]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode:
            raise ServerError(f"mariadb-install-db failed:\n{done.stdout}\n{done.stderr}")

    def prepare(self) -> None:
        self.install()

    def argv(self) -> list[str]:
        return [
            _binary("mariadbd", "mariadb-server"),
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            f"--socket={self.dir}/mysqld.sock",
            f"--pid-file={self.dir}/mysqld.pid",
            f"--tmpdir={self.tmpdir}",
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=64M",
            "--innodb-log-file-size=16M",
            "--max-connections=300",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci",
            *(["--user=root"] if IS_ROOT else []),
            *self.options,
        ]

    def connect(self, database: str | None = None, **kwargs):
        import pymysql

        return pymysql.connect(
            host="127.0.0.1",
            port=self.port,
            user="root",
            password="",
            database=database,
            charset="utf8mb4",
            autocommit=True,
            connect_timeout=kwargs.pop("connect_timeout", 2),
            **kwargs,
        )

    def ping(self) -> bool:
        try:
            conn = self.connect()
        except Exception:  # noqa: BLE001 (not up yet: any error means "try again")
            return False
        conn.close()
        return True

    def query(self, sql: str, *args, database: str | None = None) -> list[tuple]:
        """Run one statement (autocommit) and return its rows."""
        conn = self.connect(database)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args or None)
                return list(cur.fetchall())
        finally:
            conn.close()

    def query_dict(self, sql: str, *args) -> list[dict]:
        import pymysql

        conn = self.connect(cursorclass=pymysql.cursors.DictCursor)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args or None)
                return list(cur.fetchall())
        finally:
            conn.close()

    def create_database(self, name: str) -> str:
        self.query(
            f"CREATE DATABASE IF NOT EXISTS `{name}` "
            "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        )
        return self.url(name)

    def url(self, database: str = "") -> str:
        """A SQLAlchemy URL (PyMySQL) for `database` on this server."""
        return f"mysql+pymysql://root@127.0.0.1:{self.port}/{database}?charset=utf8mb4"


# --- Redis ----------------------------------------------------------------------------


class Redis(Server):
    """A private redis-server that keeps nothing on disk."""

    name = "redis"

    def argv(self) -> list[str]:
        return [
            _binary("redis-server", "redis-server"),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.dir),
            "--daemonize",
            "no",
        ]

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"


# --- gunicorn -------------------------------------------------------------------------


def http_get(port: int, path: str = "/", *, host: str = "127.0.0.1", timeout: float = 5.0):
    """(status, headers, body) of a plain HTTP GET to 127.0.0.1:port."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


class Gunicorn(Server):
    """gunicorn serving `app` (carebox by default) with `deploy/gunicorn.conf.py`.

    `env` is added to this process's environment (DATABASE_URL, CAREBOX_ENV, ...);
    `options` are extra gunicorn command-line options, which win over the config file
    (e.g. "--workers", "1", "--worker-class", "sync").
    """

    name = "gunicorn"

    def __init__(
        self,
        app: str = "backoffice:create_app()",
        *options: str,
        env: dict | None = None,
        config: str | Path | None = DEPLOY / "gunicorn.conf.py",
        port=None,
        directory=None,
        ready_timeout: float = 60.0,
    ):
        super().__init__(port=port, directory=directory)
        self.app = app
        self.options = list(options)
        self.extra_env = dict(env or {})
        self.config = config
        self.ready_timeout = ready_timeout

    def argv(self) -> list[str]:
        config = ["--config", str(self.config)] if self.config else []
        return [
            sys.executable,
            "-m",
            "gunicorn",
            *config,
            "--bind",
            f"127.0.0.1:{self.port}",
            "--pid",
            str(self.dir / "gunicorn.pid"),
            *self.options,
            self.app,
        ]

    def env(self) -> dict:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.extra_env}
        env.setdefault("CAREBOX_INSTANCE_PATH", str(self.dir / "instance"))
        return env

    def ping(self) -> bool:
        # The master binds the port before any worker is up: ready means "answers HTTP".
        try:
            http_get(self.port, "/", timeout=2)
            return True
        except OSError:
            return False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> list[int]:
        """The pids of the master's workers (from /proc)."""
        if not self.running:
            return []
        out = subprocess.run(  # noqa: S603
            ["ps", "-o", "pid=", "--ppid", str(self.proc.pid)],  # noqa: S607
            capture_output=True,
            text=True,
            check=False,
        )
        return [int(p) for p in out.stdout.split()]


# --- nginx ----------------------------------------------------------------------------


class Nginx(Server):
    """nginx with one site file (http-context text, e.g. the deploy site rendered by
    `site_for_test`). In `site`, each `@NAME@` of `ports` becomes a free port (the first
    is `self.port`, the rest are in `self.ports`) and `@DIR@` the server's directory.
    The main nginx.conf around it only names files in that directory."""

    name = "nginx"

    def __init__(self, site: str, *, ports: tuple[str, ...] = ("PORT",), directory=None):
        super().__init__(directory=directory)
        self.site = site
        self.port_names = ports
        self.ports: dict[str, int] = {}

    def prepare(self) -> None:
        if not self.ports or not self._fixed_port:
            self.ports = {self.port_names[0]: self.port}
            for extra in self.port_names[1:]:
                self.ports[extra] = free_port()
        text = self.site.replace("@DIR@", str(self.dir))
        for token, port in self.ports.items():
            text = text.replace(f"@{token}@", str(port))
        (self.dir / "site.conf").write_text(text)
        d = self.dir
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (d / sub).mkdir(exist_ok=True)
        (d / "nginx.conf").write_text(
            f"""{"user root;" if IS_ROOT else ""}
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
daemon off;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {d}/access.log;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    include {d}/site.conf;
}}
"""
        )

    def argv(self) -> list[str]:
        return [
            _binary("nginx", "nginx"),
            "-p",
            str(self.dir),
            "-c",
            str(self.dir / "nginx.conf"),
            "-e",
            str(self.dir / "error.log"),
        ]

    def ping(self) -> bool:
        return all(_tcp_open(p) for p in self.ports.values())

    def log_tail(self, lines: int = 40) -> str:
        error_log = self.dir / "error.log"
        tail = error_log.read_text(errors="replace") if error_log.exists() else ""
        return super().log_tail(lines) + "\n" + "\n".join(tail.splitlines()[-lines:])


# --- the deploy site, templated for a test --------------------------------------------

SITE_FILE = DEPLOY / "nginx" / "carebox.conf"
SERVER_NAME = "carebox.example.com"


def self_signed_cert(directory: Path, host: str = SERVER_NAME) -> tuple[Path, Path]:
    """(certificate, key) for `host`, made by openssl in `directory`."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    if not cert.exists():
        subprocess.run(  # noqa: S603
            [  # noqa: S607
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-subj",
                f"/CN={host}",
                "-addext",
                f"subjectAltName=DNS:{host}",
                "-keyout",
                str(key),
                "-out",
                str(cert),
            ],
            check=True,
            capture_output=True,
        )
    return cert, key


def site_for_test(upstream_port: int, cert: Path, key: Path) -> str:
    """deploy/nginx/carebox.conf with only its ports and paths changed for a test: the
    https and http listeners on loopback (@HTTPS@, @HTTP@ for `Nginx(ports=...)`), IPv6
    listeners dropped, the upstream on `upstream_port`, this checkout's files and the
    test certificate. Every production value must still be in the file, or this fails
    (the test would no longer run the shipped file)."""
    import flask_admin

    text = SITE_FILE.read_text()
    replacements = [
        ("listen 443 ", "listen 127.0.0.1:@HTTPS@ "),
        ("listen 80", "listen 127.0.0.1:@HTTP@"),
        ("listen [::]:", "# (no IPv6 in tests) listen [::]:"),
        ("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream_port};"),
        (f"/etc/letsencrypt/live/{SERVER_NAME}/fullchain.pem", str(cert)),
        (f"/etc/letsencrypt/live/{SERVER_NAME}/privkey.pem", str(key)),
        ("/srv/carebox/app/", f"{ROOT}/"),
        (
            "/srv/carebox/venv/lib/python3.11/site-packages/flask_admin/static/",
            f"{Path(flask_admin.__file__).parent}/static/",
        ),
        ("/var/www/letsencrypt", "@DIR@/acme"),
    ]
    for old, new in replacements:
        if old not in text:
            raise AssertionError(f"{SITE_FILE.name} no longer contains {old!r}")
        text = text.replace(old, new)
    return text


def carebox_nginx(upstream_port: int) -> Nginx:
    """An (unstarted) nginx running the deploy site in front of 127.0.0.1:upstream_port;
    `.ports["HTTPS"]` and `.ports["HTTP"]` are its listeners once started."""
    directory = Path(tempfile.mkdtemp(prefix="cb-nginx-", dir="/tmp"))
    cert, key = self_signed_cert(directory)
    server = Nginx(
        site_for_test(upstream_port, cert, key), ports=("HTTPS", "HTTP"), directory=directory
    )
    server._owns_dir = True
    return server


def carebox_env(database_url: str, **extra: str) -> dict:
    """The environment of a production carebox behind the deploy nginx."""
    return {
        "CAREBOX_ENV": "production",
        "SECRET_KEY": "test-secret-key-not-for-production",
        "SECURITY_PASSWORD_SALT": "test-salt-not-for-production",
        "DATABASE_URL": database_url,
        "CAREBOX_BASE_URL": f"https://{SERVER_NAME}",
        "CAREBOX_PROXY_FIX": "1",
        "RATELIMIT_STORAGE_URI": "memory://",
        **extra,
    }


class _LoopbackHTTPS(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1:port that presents SERVER_NAME (SNI, Host) and trusts the
    test's self-signed certificate."""

    def __init__(self, port: int, timeout: float):
        import ssl

        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        super().__init__(SERVER_NAME, port, timeout=timeout, context=context)

    def connect(self):
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=SERVER_NAME)


def https_connection(port: int, timeout: float = 10.0) -> http.client.HTTPSConnection:
    return _LoopbackHTTPS(port, timeout)


# --- replication ------------------------------------------------------------------------


def start_replication(primary: MariaDB, replica: MariaDB, timeout: float = 30.0) -> None:
    """Make `replica` a GTID replica of `primary` (which runs with --log-bin) and wait
    until both of its threads run."""
    primary.query("CREATE USER IF NOT EXISTS 'repl'@'127.0.0.1' IDENTIFIED BY 'repl'")
    primary.query("GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'")
    replica.query(
        f"CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {primary.port}, "
        "MASTER_USER = 'repl', MASTER_PASSWORD = 'repl', MASTER_CONNECT_RETRY = 1, "
        "MASTER_USE_GTID = slave_pos"
    )
    replica.query("START SLAVE")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = replica.query_dict("SHOW SLAVE STATUS")[0]
        if status["Slave_IO_Running"] == "Yes" and status["Slave_SQL_Running"] == "Yes":
            wait_for_replica(primary, replica, timeout)
            return
        time.sleep(0.2)
    raise ServerError(f"replication did not start: {status}")


def wait_for_replica(primary: MariaDB, replica: MariaDB, timeout: float = 30.0) -> None:
    """Wait until `replica` has applied everything `primary` has committed so far."""
    position = primary.query("SELECT @@gtid_binlog_pos")[0][0]
    if not position:
        return
    done = replica.query("SELECT MASTER_GTID_WAIT(%s, %s)", position, timeout)[0][0]
    if done != 0:
        raise ServerError(
            f"the replica did not reach {position} in {timeout} s: "
            f"{replica.query_dict('SHOW SLAVE STATUS')}"
        )


# --- Galera ---------------------------------------------------------------------------


class GaleraNode(MariaDB):
    """One node of a Galera cluster on loopback (Debian's galera-4), a private mariadbd
    with its own datadir and four ports: SQL (`port`), group communication (`gcomm_port`),
    incremental state transfer (`ist_port`) and full state transfer (`sst_port`).

    The options live in a my.cnf of the node's own (`--defaults-file`), because the state
    transfer script (wsrep_sst_mariabackup, run by mariadbd) reads them from there. State
    transfer is by mariabackup: rsync's fails when mariadbd runs as root (STACK trap 20).
    A joiner starts from an empty datadir and receives everything from a donor.
    """

    name = "galera"
    # Ports of 127.0.0.1 that the other nodes must know before anybody starts.
    ready_timeout = 180.0

    def __init__(self, cluster: GaleraCluster, index: int):
        super().__init__(ready_timeout=self.ready_timeout)
        self.cluster = cluster
        self.index = index
        self.port = free_port()
        self._fixed_port = True
        self.gcomm_port, self.ist_port, self.sst_port = free_port(), free_port(), free_port()
        self.bootstrap = False

    def install(self) -> None:
        if self.index == 0:  # the first node creates the system tables, joiners get a copy
            super().install()
        else:
            self.datadir.mkdir(exist_ok=True)
        self.tmpdir.mkdir(exist_ok=True)

    def prepare(self) -> None:
        self.install()
        cluster = ",".join(f"127.0.0.1:{n.gcomm_port}" for n in self.cluster.nodes)
        provider = "; ".join(
            [
                f"gmcast.listen_addr=tcp://127.0.0.1:{self.gcomm_port}",
                f"ist.recv_addr=127.0.0.1:{self.ist_port}",
                "gcache.size=64M",
                # Loopback: notice a killed node within seconds, not the WAN defaults.
                "evs.suspect_timeout=PT3S",
                "evs.inactive_timeout=PT6S",
                "evs.install_timeout=PT6S",
                "pc.wait_prim_timeout=PT30S",
            ]
        )
        (self.dir / "my.cnf").write_text(
            f"""[mysqld]
datadir={self.datadir}
port={self.port}
bind-address=127.0.0.1
socket={self.dir}/mysqld.sock
pid-file={self.dir}/mysqld.pid
tmpdir={self.tmpdir}
skip-name-resolve
innodb-buffer-pool-size=64M
innodb-log-file-size=16M
max-connections=300
character-set-server=utf8mb4
collation-server=utf8mb4_unicode_ci
{"user=root" if IS_ROOT else ""}
binlog-format=ROW
default-storage-engine=InnoDB
innodb-autoinc-lock-mode=2
innodb-flush-log-at-trx-commit=2
log-error={self.dir}/error.log
wsrep-on=ON
wsrep-provider={_galera_provider()}
wsrep-cluster-name={self.cluster.name}
wsrep-cluster-address=gcomm://{cluster}
wsrep-node-name=node{self.index + 1}
wsrep-node-address=127.0.0.1:{self.gcomm_port}
wsrep-node-incoming-address=127.0.0.1:{self.port}
wsrep-provider-options="{provider}"
wsrep-sst-method=mariabackup
wsrep-sst-auth=root:
wsrep-sst-receive-address=127.0.0.1:{self.sst_port}
wsrep-slave-threads=2

[sst]
# mariabackup streams through socat; no compression on loopback.
transferfmt=socat
sst-syslog=-1
"""
        )

    def argv(self) -> list[str]:
        return [
            _binary("mariadbd", "mariadb-server"),
            f"--defaults-file={self.dir}/my.cnf",
            *(["--wsrep-new-cluster"] if self.bootstrap else []),
            *([f"--wsrep-start-position={self.start_position}"] if self.start_position else []),
        ]

    start_position: str | None = None

    def recover(self) -> str | None:
        """After a crash, the position this node's InnoDB holds (`mariadbd --wsrep-recover`,
        what Debian's galera_recovery does before systemd starts a node): started from it,
        the node asks the others for the missing writes only (IST), not a full copy (SST)."""
        grastate = self.datadir / "grastate.dat"
        if not grastate.exists() or "seqno:   -1" not in grastate.read_text():
            return None
        log = self.dir / "recover.log"
        subprocess.run(  # noqa: S603 (our own argv)
            [
                _binary("mariadbd", "mariadb-server"),
                f"--defaults-file={self.dir}/my.cnf",
                "--wsrep-recover",
                f"--log-error={log}",
            ],
            capture_output=True,
            check=False,
            timeout=120,
        )
        found = re.findall(r"WSREP: Recovered position: (\S+)", log.read_text(errors="replace"))
        return found[-1] if found else None

    def start(self) -> GaleraNode:
        self.start_position = None if self.bootstrap else self.recover()
        return super().start()

    def ping(self) -> bool:
        """Ready means synced with the cluster and accepting queries, not just listening."""
        try:
            conn = self.connect()
        except Exception:  # noqa: BLE001 (not up yet)
            return False
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SHOW STATUS WHERE Variable_name IN ('wsrep_local_state', 'wsrep_ready')"
                )
                status = dict(cur.fetchall())
        finally:
            conn.close()
        return status.get("wsrep_local_state") == "4" and status.get("wsrep_ready") == "ON"

    def status(self, name: str) -> str | None:
        rows = self.query("SHOW STATUS LIKE %s", name)
        return rows[0][1] if rows else None

    def log_tail(self, lines: int = 40) -> str:
        error_log = self.dir / "error.log"
        tail = error_log.read_text(errors="replace") if error_log.exists() else ""
        return super().log_tail(lines) + "\n" + "\n".join(tail.splitlines()[-lines:])


def _galera_provider() -> str:
    for path in ("/usr/lib/galera/libgalera_smm.so", "/usr/lib/libgalera_smm.so"):
        if os.path.exists(path):
            return path
    raise RuntimeError("galera-4 is not installed: `apt-get install galera-4 mariadb-backup`")


class GaleraCluster:
    """Three (or `size`) GaleraNodes on loopback: the first bootstraps the cluster
    (`--wsrep-new-cluster`), the others join it one at a time by state transfer.

        with GaleraCluster() as cluster:
            a, b, c = cluster.nodes
            b.kill(); ...; b.start()       # a crash, then a rejoin (IST or SST)
    """

    def __init__(self, size: int = 3, name: str = "carebox_test"):
        self.name = name
        self.nodes = [GaleraNode(self, i) for i in range(size)]

    def start(self) -> GaleraCluster:
        first, *others = self.nodes
        first.bootstrap = True
        first.start()
        first.bootstrap = False  # a restart of the first node joins like any other
        for node in others:
            node.start()
        return self

    def size(self) -> int:
        """The cluster's size as the first running node sees it."""
        for node in self.nodes:
            if node.running:
                return int(node.status("wsrep_cluster_size") or 0)
        return 0

    def close(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
        for node in self.nodes:
            node.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


# --- haproxy in front of Galera -----------------------------------------------------------

HAPROXY_FILE = DEPLOY / "haproxy" / "carebox-galera.cfg"
HEALTH_SCRIPT = DEPLOY / "haproxy" / "galera-health"


class GaleraHealth(Server):
    """deploy/haproxy/galera-health answering on a port of its own for one node: socat
    runs the script once per connection (what systemd's galera-health.socket does with
    Accept=yes), asking the node over TCP as root (GALERA_HEALTH_CLIENT)."""

    name = "galera-health"

    def __init__(self, node: GaleraNode):
        super().__init__()
        self.node = node

    def argv(self) -> list[str]:
        return [
            _binary("socat", "socat"),
            f"TCP-LISTEN:{self.port},bind=127.0.0.1,reuseaddr,fork",
            f"EXEC:{HEALTH_SCRIPT}",
        ]

    def env(self) -> dict:
        client = f"mariadb --protocol=tcp -h 127.0.0.1 -P {self.node.port} -u root"
        return {**os.environ, "GALERA_HEALTH_CLIENT": client}

    def ping(self) -> bool:
        return _tcp_open(self.port)


def haproxy_for_test(nodes: list[GaleraNode], checks: list[GaleraHealth]) -> str:
    """deploy/haproxy/carebox-galera.cfg with only addresses changed for a test: the two
    listeners on free ports (@WRITE@, @READ@), each `server dbN` on node N's SQL port and
    its health check's port, haproxy in the foreground as this user without syslog. Every
    other value is the production file's (the test fails if they are no longer there)."""
    text = HAPROXY_FILE.read_text()
    replacements = [
        ("    log /dev/log local0\n", ""),
        ("    user haproxy\n", ""),
        ("    group haproxy\n", ""),
        ("    daemon\n", ""),
        ("bind 127.0.0.1:3306", "bind 127.0.0.1:@WRITE@"),
        ("bind 127.0.0.1:3307", "bind 127.0.0.1:@READ@"),
    ]
    for index, (node, check) in enumerate(zip(nodes, checks, strict=True), start=1):
        replacements.append(
            (
                f"server db{index} 10.0.0.1{index}:3306",
                f"server db{index} 127.0.0.1:{node.port} port {check.port}",
            )
        )
    for old, new in replacements:
        if old not in text:
            raise AssertionError(f"{HAPROXY_FILE.name} no longer contains {old!r}")
        text = text.replace(old, new)
    return text


class HAProxy(Server):
    """haproxy (foreground, `-db`) running `config`; `@WRITE@`/`@READ@` become its ports
    (`port` is the write listener, `read_port` the read one)."""

    name = "haproxy"

    def __init__(self, config: str):
        super().__init__()
        self.config = config
        self.read_port: int | None = None

    def prepare(self) -> None:
        if self.read_port is None:
            self.read_port = free_port()
        text = self.config.replace("@WRITE@", str(self.port)).replace("@READ@", str(self.read_port))
        (self.dir / "haproxy.cfg").write_text(text)

    def argv(self) -> list[str]:
        return [_binary("haproxy", "haproxy"), "-db", "-f", str(self.dir / "haproxy.cfg")]

    def ping(self) -> bool:
        return _tcp_open(self.port) and _tcp_open(self.read_port)

    def url(self, database: str = "", *, read: bool = False) -> str:
        port = self.read_port if read else self.port
        return f"mysql+pymysql://root@127.0.0.1:{port}/{database}?charset=utf8mb4"

    def node_name(self, *, read: bool = False) -> str:
        """Which node a new connection through the listener reaches."""
        import pymysql

        conn = pymysql.connect(
            host="127.0.0.1",
            port=self.read_port if read else self.port,
            user="root",
            password="",
            connect_timeout=3,
        )
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT @@wsrep_node_name")
                return cur.fetchone()[0]
        finally:
            conn.close()
