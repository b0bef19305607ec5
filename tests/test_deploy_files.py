"""The deployment files in deploy/ are what an administrator installs (docs/deploy.md): the
systemd units pass systemd's own checker and start commands that exist, the haproxy
configuration is valid, the Galera health check answers as haproxy expects, and gunicorn
with deploy/gunicorn.conf.py refuses to start without its secrets."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .servers import DEPLOY, ROOT, Gunicorn, ServerError, carebox_env

UNITS = sorted(
    [*(DEPLOY / "systemd").iterdir(), *(DEPLOY / "haproxy").glob("*.s*[te]")],
    key=lambda p: p.name,
)
CAREBOX = Path(sys.executable).parent / "carebox"
# Commands other engineers are building; each xfail turns into a failure (strict) the day
# its command exists, so the marker cannot outlive its reason.
NOT_YET: dict[str, str] = {}


def _local(text: str) -> str:
    """A unit's text with the production paths pointing into this checkout."""
    return (
        text.replace("/srv/carebox/venv", str(Path(sys.executable).parent.parent))
        .replace("/srv/carebox/app", str(ROOT))
        .replace("/usr/local/bin/galera-health", str(DEPLOY / "haproxy" / "galera-health"))
    )


def test_units_pass_systemd_analyze_verify(tmp_path):
    for unit in UNITS:
        (tmp_path / unit.name).write_text(_local(unit.read_text()))
    done = subprocess.run(  # noqa: S603
        ["systemd-analyze", "verify", *sorted(p.name for p in tmp_path.iterdir())],  # noqa: S607
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def _exec_start(unit: Path) -> list[str]:
    line = re.search(r"^ExecStart=(.+)$", unit.read_text(), re.M)
    return shlex.split(line[1]) if line else []


CAREBOX_UNITS = [u for u in UNITS if _exec_start(u)[:1] == ["/srv/carebox/venv/bin/carebox"]]


@pytest.mark.parametrize(
    "unit",
    [
        pytest.param(u, marks=pytest.mark.xfail(strict=True, reason=NOT_YET[u.name]))
        if u.name in NOT_YET
        else u
        for u in CAREBOX_UNITS
    ],
    ids=[u.name for u in CAREBOX_UNITS],
)
def test_worker_units_start_commands_that_exist(unit, tmp_path):
    argv = _exec_start(unit)[1:]
    words = [a for a in argv if not a.startswith("-") and not a.isdigit()]
    options = [a for a in argv if a.startswith("--")]
    env = {**os.environ, "CAREBOX_ENV": "development", "CAREBOX_INSTANCE_PATH": str(tmp_path)}
    done = subprocess.run(  # noqa: S603
        [str(CAREBOX), *words, "--help"], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    for option in options:
        assert option in done.stdout, f"{' '.join(words)} has no {option}"


def test_web_unit_runs_gunicorn_with_the_deploy_config():
    argv = _exec_start(DEPLOY / "systemd" / "carebox-web.service")
    assert argv[0] == "/srv/carebox/venv/bin/gunicorn"
    assert argv[1:] == [
        "--config",
        "/srv/carebox/app/deploy/gunicorn.conf.py",
        "backoffice:create_app()",
    ]


def test_every_service_reads_the_environment_file_and_belongs_to_the_target():
    target = (DEPLOY / "systemd" / "carebox.target").read_text()
    services = sorted((DEPLOY / "systemd").glob("carebox-*.service"))
    # web, outbox, exports, mail (LMTP), auto-finish, whatsapp, situations, SLA warnings,
    # notice digest, dashboard figures, mail fetch (IMAP), the nightly SLA recompute
    assert len(services) == 12
    for service in services:
        text = service.read_text()
        assert "EnvironmentFile=/etc/carebox/carebox.env" in text, service.name
        assert "PartOf=carebox.target" in text, service.name
        assert "User=carebox" in text, service.name
        # The target starts every one except the IMAP fetcher: an alternative to LMTP that
        # joins the target only once enabled (WantedBy), and needs CAREBOX_IMAP_URL; and
        # the nightly recompute, which its timer starts (the timer is the target's).
        if service.name == "carebox-mailfetch.service":
            assert service.name not in target
            assert "WantedBy=carebox.target" in text
        elif service.name == "carebox-slarecompute.service":
            assert service.name not in target and "Type=oneshot" in text
            timer = (DEPLOY / "systemd" / "carebox-slarecompute.timer").read_text()
            assert "carebox-slarecompute.timer" in target
            assert "Unit=carebox-slarecompute.service" in timer and "Persistent=true" in timer
        else:
            assert service.name in target, service.name


def test_the_imap_fetcher_stays_stopped_without_its_mailbox(tmp_path):
    """No CAREBOX_IMAP_URL is a usage error (exit 2), which its unit does not restart."""
    unit = (DEPLOY / "systemd" / "carebox-mailfetch.service").read_text()
    assert "RestartPreventExitStatus=2" in unit
    env = {**os.environ, "CAREBOX_ENV": "development", "CAREBOX_INSTANCE_PATH": str(tmp_path)}
    env.pop("CAREBOX_IMAP_URL", None)
    done = subprocess.run(  # noqa: S603
        [str(CAREBOX), "mail", "fetch", "--loop"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr


def test_haproxy_config_is_valid():
    done = subprocess.run(  # noqa: S603
        ["haproxy", "-c", "-f", str(DEPLOY / "haproxy" / "carebox-galera.cfg")],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def galera_health(client: str) -> tuple[str, str]:
    """(status line, body) of the health check script, asked over a socket pair as
    systemd's Accept=yes socket runs it."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.sendall(b"OPTIONS / HTTP/1.0\r\n\r\n")
        subprocess.run(  # noqa: S603
            [str(DEPLOY / "haproxy" / "galera-health")],
            stdin=theirs,
            stdout=theirs,
            env={**os.environ, "GALERA_HEALTH_CLIENT": client},
            check=True,
            timeout=30,
        )
        theirs.close()
        answer = b""
        while chunk := ours.recv(4096):
            answer += chunk
    head, _, body = answer.decode().partition("\r\n\r\n")
    return head.splitlines()[0], body


def test_galera_health_refuses_a_server_that_is_not_a_synced_node():
    # The CI's MariaDB is a plain server (no wsrep): never a node haproxy may use.
    status, body = galera_health("mariadb -h127.0.0.1 -P3306 -uroot")
    assert status == "HTTP/1.1 503 Service Unavailable" and body.startswith("not synced")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        nobody = s.getsockname()[1]
    status, body = galera_health(f"mariadb -h127.0.0.1 -P{nobody} -uroot")
    assert (status, body) == ("HTTP/1.1 503 Service Unavailable", "not synced: no answer")


def test_gunicorn_with_the_deploy_config_stops_at_once_without_secrets(tmp_path):
    env = carebox_env(f"sqlite:///{tmp_path}/c.db", SECRET_KEY="")
    server = Gunicorn(env=env, ready_timeout=30)
    try:
        with pytest.raises(ServerError, match="without SECRET_KEY"):
            server.start()
    finally:
        server.close()


@pytest.mark.parametrize(
    ("workers", "storage", "warned"),
    [("2", "memory://", True), ("1", "memory://", False), ("2", "redis://127.0.0.1:1/0", False)],
)
def test_gunicorn_warns_loudly_when_workers_count_limits_each_on_their_own(
    tmp_path, workers, storage, warned
):
    """Issue 9 item 8: with memory:// every worker has its own counters (limits × workers)."""
    from backoffice import create_app
    from backoffice.extensions import db

    url = f"sqlite:///{tmp_path}/c.db"
    app = create_app({"ENV_NAME": "testing", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        db.create_all()
        db.engine.dispose()
    env = carebox_env(url, GUNICORN_WORKERS=workers, GUNICORN_THREADS="1")
    env["RATELIMIT_STORAGE_URI"] = storage
    with Gunicorn(env=env, ready_timeout=60) as server:
        deadline = time.monotonic() + 20
        while warned and "RATE LIMITS ARE PER WORKER" not in server.log_tail(200):
            assert time.monotonic() < deadline, server.log_tail()
            time.sleep(0.2)
        log = server.log_tail(200)
    assert ("RATE LIMITS ARE PER WORKER" in log) is warned
    if warned:
        assert log.count("RATE LIMITS ARE PER WORKER") == 3 and "2 times" in log


def test_per_process_limits_warning_names_the_multiplier():
    from backoffice.config import per_process_limits_warning

    text = per_process_limits_warning({"RATELIMIT_STORAGE_URI": "memory://"}, 4)
    assert "4 times" in text and "redis://" in text
    assert per_process_limits_warning({"RATELIMIT_STORAGE_URI": "memory://"}, 1) is None
    assert per_process_limits_warning({"RATELIMIT_STORAGE_URI": "redis://h/0"}, 4) is None


def test_gunicorn_freezes_the_preloaded_app_and_collects_young_objects_less_often():
    """The preloaded app's objects are frozen before each fork, so no worker's collector
    walks them again, a worker starts with one full collection (so that it counts from its
    own objects: issue 16 item 9), and it collects young objects every
    GUNICORN_GC_THRESHOLD allocations (deploy/gunicorn.conf.py)."""
    import gc
    import runpy
    from types import SimpleNamespace

    config = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    before = gc.get_threshold()
    server = SimpleNamespace(app=SimpleNamespace(wsgi=lambda: SimpleNamespace(extensions={})))
    try:
        config["pre_fork"](server, None)
        assert gc.get_freeze_count() > 10_000
        full = gc.get_stats()[2]["collections"]
        config["post_fork"](server, None)
        assert gc.get_threshold() == (10_000, *before[1:])
        assert gc.get_stats()[2]["collections"] == full + 1
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
