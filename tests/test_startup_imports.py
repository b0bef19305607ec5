"""A worker does not carry what only a few paths need (issue 16 item 9): the app starts
without openpyxl (XLSX exports), zxcvbn (setting a password) and jsonschema (a tracking
batch the fast check refuses), and never imports a test tool."""

from __future__ import annotations

import json
import subprocess
import sys

LAZY = ("openpyxl", "zxcvbn", "jsonschema")
NEVER = ("schemathesis", "hypothesis", "pytest", "playwright")


def test_the_app_starts_without_the_heavy_optional_modules():
    code = (
        "import json, sys\n"
        "from backoffice import create_app\n"
        "create_app({'ENV_NAME': 'development', 'SQLALCHEMY_DATABASE_URI': 'sqlite://'})\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run(  # noqa: S603 (a fixed argv)
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded = set(json.loads(out.splitlines()[-1]))
    assert loaded & set(LAZY + NEVER) == set()
    assert "backoffice" in loaded


def test_the_working_calendar_loads_indonesia_alone():
    """The SLA clocks' holidays come from holidays' Indonesia module only: importing
    `holidays.countries` loads its 250 country modules, 8 MB in each worker (the first
    ticket it filed). Later importers of the package still get all of it."""
    code = (
        "import json, sys\n"
        "from backoffice.domain import worktime\n"
        "days = worktime.public_holidays(2026, 'en')\n"
        "countries = sorted(m for m in sys.modules if m.startswith('holidays.countries.'))\n"
        "from holidays.countries import Germany, Indonesia\n"
        "print(json.dumps([countries, len(days), Indonesia is worktime.Indonesia]))\n"
    )
    out = subprocess.run(  # noqa: S603 (a fixed argv)
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    countries, days, same_class = json.loads(out.splitlines()[-1])
    assert countries == ["holidays.countries.indonesia"]
    assert days > 10
    assert same_class
