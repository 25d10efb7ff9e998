"""Bad configuration refuses to start and names the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _check(**env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in {"TICK_SECONDS", "DATABASE_URL"}} | env
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE','config.settings'); django.setup()",
        ],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TICK_SECONDS": "fast"}, "TICK_SECONDS='fast' is not an integer"),
        ({"TICK_SECONDS": "0"}, "TICK_SECONDS=0 is below the minimum 1"),
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL='http://x' must start with redis://"),
        ({"OVERRIDE_APPROVAL_COST": "nan"}, "OVERRIDE_APPROVAL_COST='nan' is not a finite number"),
        ({"OVERRIDE_MAX_HOURS_PIN": "inf"}, "OVERRIDE_MAX_HOURS_PIN='inf' is not a finite number"),
    ],
)
def test_it_refuses_to_start_with_a_bad_value(env: dict[str, str], message: str) -> None:
    result = _check(**env)
    assert result.returncode != 0
    assert message in result.stderr


def test_it_requires_a_secret_key_outside_debug() -> None:
    full = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "TIPOFF_ALLOW_INSECURE_SECRET", "DEBUG"}}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE','config.settings'); django.setup()",
        ],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "SECRET_KEY must be set" in result.stderr
