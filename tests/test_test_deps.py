"""`make test` sets up what the suite needs before anything runs (.ci/test-deps): the
Debian packages of .ci/debian-packages and the npm packages of package.json.

The script runs here in a copy of the repository's layout with a package list of our
own and stand-ins for `id`, `apt-get` and `npm` on PATH, so each case (present, missing
as a user, missing as root) is real shell behaviour without touching the machine."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / ".ci" / "test-deps"


def _stub(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


@pytest.fixture
def repo(tmp_path):
    """A repository layout with the real script and a list naming one present package
    (probed by a path) and one present command."""
    (tmp_path / ".ci").mkdir()
    shutil.copy(SCRIPT, tmp_path / ".ci" / "test-deps")
    (tmp_path / "package-lock.json").write_text("{}")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    for name in ("apt-get", "npm"):
        _stub(bin_dir, name, f'echo "{name} $*" >> {log}')
    lists = tmp_path / ".ci" / "debian-packages"
    lists.write_text(
        "# comment lines and blank lines are skipped\n\n"
        f"present-by-path   {SCRIPT}   # a file that exists\n"
        "present-by-command  sh\n"
    )
    return tmp_path


def _run(repo: Path, uid: int) -> subprocess.CompletedProcess:
    _stub(repo / "bin", "id", f"echo {uid}")
    env = {**os.environ, "PATH": f"{repo / 'bin'}:/usr/bin:/bin"}
    return subprocess.run(  # noqa: S603 (our own script, in a copy of the layout)
        [str(repo / ".ci" / "test-deps")], env=env, capture_output=True, text=True, timeout=60
    )


def _calls(repo: Path) -> list[str]:
    log = repo / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def test_the_real_list_names_what_the_suite_uses():
    listed = {
        line.split()[0]
        for line in (ROOT / ".ci" / "debian-packages").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for package in ("chromium", "nginx", "haproxy", "galera-4", "mariadb-backup"):
        assert package in listed
    assert {"dovecot-imapd", "default-jre-headless", "npm"} <= listed
    lock = (ROOT / "package-lock.json").read_text()
    assert '"node_modules/axe-core"' in lock and '"node_modules/vnu-jar"' in lock
    assert "node_modules/" in (ROOT / ".gitignore").read_text().split()


def test_make_test_runs_the_setup_before_anything_else():
    dry = subprocess.run(  # noqa: S603
        [shutil.which("make"), "-n", "test"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,  # noqa: S607
    ).stdout.splitlines()
    first = next(i for i, line in enumerate(dry) if "test-deps" in line)
    assert all("pytest" not in line and "pip" not in line for line in dry[:first]), dry


def test_everything_present_installs_nothing(repo):
    (repo / "node_modules").mkdir()
    (repo / "node_modules" / ".package-lock.json").write_text("{}")
    result = _run(repo, uid=1000)
    assert result.returncode == 0, result.stderr
    assert _calls(repo) == []  # no apt-get, no npm: a probe per package and done


def test_missing_package_as_a_user_stops_at_once_with_the_command(repo):
    with (repo / ".ci" / "debian-packages").open("a") as f:
        f.write("no-such-pkg-a  /nonexistent/a\nno-such-pkg-b  no-such-command-b\n")
    result = _run(repo, uid=1000)
    assert result.returncode == 1
    assert (
        "sudo apt-get update && sudo apt-get install -y no-such-pkg-a no-such-pkg-b"
        in result.stderr
    )
    assert "present-by" not in result.stderr
    assert _calls(repo) == []  # stopped before npm or anything else


def test_missing_package_as_root_is_installed_then_npm_runs(repo):
    with (repo / ".ci" / "debian-packages").open("a") as f:
        f.write("no-such-pkg  /nonexistent/a  # comment after the probe\n")
    result = _run(repo, uid=0)
    assert result.returncode == 0, result.stderr
    calls = _calls(repo)
    assert calls[0] == "apt-get update -qq"
    assert calls[1] == "apt-get install -y no-such-pkg -qq"
    assert calls[2].startswith("npm ci --ignore-scripts")  # no node_modules yet


def test_npm_runs_again_when_the_lock_changed(repo):
    (repo / "node_modules").mkdir()
    marker = repo / "node_modules" / ".package-lock.json"
    marker.write_text("{}")
    os.utime(marker, (time.time() - 100, time.time() - 100))
    assert _run(repo, uid=1000).returncode == 0
    assert [c.split()[:2] for c in _calls(repo)] == [["npm", "ci"]]
