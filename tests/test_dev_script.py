"""scripts/dev.py (`make run`) keeps its files where the settings look for them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import dev

ROOT = Path(__file__).resolve().parents[1]


def test_make_run_writes_its_secret_key_where_the_settings_read_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # So that `TIPOFF_VAR_DIR=... manage.py COMMAND` beside a `make run` needs no SECRET_KEY of its own.
    monkeypatch.setenv("TIPOFF_VAR_DIR", str(tmp_path))
    key = dev._secret_key()
    assert (tmp_path / "secret_key").read_text().strip() == key
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "TIPOFF_ALLOW_INSECURE_SECRET", "DEBUG"}}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE','config.settings'); django.setup();"
            "from django.conf import settings; print(settings.SECRET_KEY)",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout.strip()) == (0, key), result.stderr


def test_make_run_names_the_sqlite_file_the_settings_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIPOFF_VAR_DIR", str(tmp_path))
    assert dev._database_description({}) == f"SQLite at {tmp_path / 'tipoff.sqlite3'}"
    assert dev._database_description({"DATABASE_URL": "postgres://h/db"}) == "postgres://h/db"
