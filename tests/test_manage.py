"""manage.py says what to do when the default SQLite database has never been migrated."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _manage(var_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {
        "TIPOFF_VAR_DIR": str(var_dir),
        "TIPOFF_ALLOW_INSECURE_SECRET": "1",
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_command_on_a_database_never_migrated_says_to_migrate(tmp_path: Path) -> None:
    result = _manage(tmp_path, "check_backend", "win-probability")
    assert result.returncode != 0
    assert "database not migrated" in result.stderr
    assert "run `make run` or `manage.py migrate`" in result.stderr
    assert "Traceback" not in result.stderr
    # Not left behind empty, where the next command would fail on it with Django's bare "no such table".
    assert not (tmp_path / "tipoff.sqlite3").exists()
    assert "database not migrated" in _manage(tmp_path, "check_backend", "win-probability").stderr


def test_a_command_that_needs_no_database_runs_before_any_migration(tmp_path: Path) -> None:
    result = _manage(tmp_path, "check")
    assert result.returncode == 0, result.stderr
