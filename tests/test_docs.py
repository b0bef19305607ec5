"""The project documents itself (docs/architecture.md), and the documentation stays true
where a machine can tell: nothing points outside the repository, every section a comment
cites exists, every file and URL the page names exists."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
# A design file outside the repository: readers of a clone do not have it.
OUTSIDE = re.compile(r"\.\./shared|/work/shared|\b(DESIGN|STACK|STYLE)\.md|\bDESIGN §")
CITATION = re.compile(r"architecture\.md §(\d+)(?:, trap (\d+))?")
REPO_PATH = re.compile(
    r"`((?:backoffice|public_portal|templates|tests|bench|seed|migrations|docs|deploy|\.ci)"
    r"/[\w./-]*)`"
)


def _tracked() -> list[Path]:
    out = subprocess.run(  # noqa: S603 (a fixed argv)
        [shutil.which("git"), "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return [ROOT / name for name in out.split("\0") if name]


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
        return None  # binary (screenshots) or deleted in the work tree


def _sections() -> dict[int, str]:
    """Section number -> its text, from the page's `## N. Title` headings."""
    parts = re.split(r"^## (\d+)\. .*$", ARCHITECTURE.read_text(), flags=re.M)
    return {int(parts[i]): parts[i + 1] for i in range(1, len(parts), 2)}


def test_nothing_points_outside_the_repository():
    me = Path(__file__).resolve()
    offenders = []
    for path in _tracked():
        text = _text(path)
        if path.resolve() == me or text is None:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == [], "\n".join(offenders)


def test_readme_sends_readers_to_the_architecture_page():
    assert "docs/architecture.md" in (ROOT / "README.md").read_text()


def test_the_page_has_the_sections_others_extend():
    titles = re.findall(r"^## \d+\. (.*)$", ARCHITECTURE.read_text(), flags=re.M)
    wanted = (
        "Roles",
        "lifecycle",
        "Data",
        "Layout",
        "contracts",
        "past one machine",
        "Shipments",
        "Channels",
        "desk",
        "Working time",
        "Traps",
    )
    for word in wanted:
        assert any(word.lower() in t.lower() for t in titles), (word, titles)


def test_every_cited_section_and_trap_exists():
    sections = _sections()
    traps = {int(n) for n in re.findall(r"^(\d+)\. \*\*", sections[13], flags=re.M)}
    missing = []
    for path in _tracked():
        text = _text(path)
        for section, trap in CITATION.findall(text or ""):
            if int(section) not in sections or (trap and int(trap) not in traps):
                missing.append(f"{path.relative_to(ROOT)}: §{section} trap {trap or '-'}")
    assert missing == []
    assert len(traps) >= 21


def test_files_the_page_names_exist():
    """Paths in backticks exist, except where a paragraph or item turns to what is being
    built ("Being built", "Planned": from there to its end)."""
    text = ARCHITECTURE.read_text()
    missing = []
    for part in re.split(r"\n\s*\n|\n(?=\s*- )", text):
        part = re.split(r"Being built|Planned", part)[0]
        for name in REPO_PATH.findall(part):
            if "NNNN" in name:
                continue
            if not (ROOT / name).exists():
                missing.append(name)
    assert missing == []


def test_urls_of_the_contracts_exist(app):
    rules = {rule.rule.rstrip("/") or "/" for rule in app.url_map.iter_rules()}
    named = re.findall(r"`(/[^`\s]*)`", _sections()[5])
    assert len(named) > 15
    for url in named:
        path = url.split("?")[0]
        path = re.sub(r"<(number|token|code)>", r"<\1>", path).rstrip("/") or "/"
        converted = {r for r in rules if re.sub(r"<int:", "<", r) == path}
        assert path in rules or converted, url
