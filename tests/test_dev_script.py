"""scripts/dev.py (`make run`): where it keeps its files, and the order it brings Tipoff up in."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def _answers(port: int) -> bool:
    """Whether a Redis answers PING on 127.0.0.1:port."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")
    return False


def test_make_run_seeds_the_demo_with_the_embedded_redis_up_and_stops_it_after_the_processes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Seeding prices the demo's game-day floors with the learned forecasts, which it shares through Redis: run
    # before the embedded Redis was up, it logged "fitting here" for each, and its fits were lost to the worker.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("EMBEDDED_REDIS_PORT", str(port))
    monkeypatch.setenv("TIPOFF_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("SECRET_KEY", "test-only")
    steps: list[tuple[str, str, bool]] = []

    def manage(*args: str, env: dict[str, str]) -> None:
        steps.append((args[0], env["REDIS_URL"], _answers(port)))

    def processes(procfile: Path, env: dict[str, str]) -> int:
        steps.append((procfile.name, env["REDIS_URL"], _answers(port)))
        return 0

    monkeypatch.setattr(dev, "_manage", manage)
    monkeypatch.setattr(dev, "_processes", processes)
    assert dev.run() == 0
    url = f"redis://127.0.0.1:{port}/0"
    # The processes' Procfile starts no Redis of its own: the one seeding shared its fits in serves them.
    assert steps == [("migrate", url, True), ("seed_demo", url, True), ("Procfile", url, True)]
    assert not _answers(port)  # stopped once they have


def test_make_run_with_a_redis_of_ones_own_starts_none(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/11")
    monkeypatch.setenv("SECRET_KEY", "test-only")
    monkeypatch.setenv("TIPOFF_VAR_DIR", str(tmp_path))
    started: list[Any] = []
    monkeypatch.setattr(dev, "embedded_redis", started.append)
    monkeypatch.setattr(dev, "_manage", lambda *args, env: None)
    ran: list[str] = []

    def processes(procfile: Path, env: dict[str, str]) -> int:
        ran.append(env["REDIS_URL"])
        return 0

    monkeypatch.setattr(dev, "_processes", processes)
    assert dev.run() == 0 and started == [] and ran == ["redis://127.0.0.1:6379/11"]
    # A SECRET_KEY given: none is made and left in the var directory, where a later check would find it.
    assert not (tmp_path / "secret_key").exists()


def test_make_run_keeps_its_var_directory_and_the_database_its_processes_make_private(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The SQLite database, which holds the sessions, was made 0644 in a 0755 directory beside a 0600 secret key.
    var = tmp_path / "var"
    var.mkdir()
    var.chmod(0o755)  # as an earlier make run left it
    monkeypatch.setenv("TIPOFF_VAR_DIR", str(var))
    made: dict[str, int] = {}

    def run() -> int:
        # As `manage.py migrate` makes it: in a process make run starts.
        database = var / "tipoff.sqlite3"
        script = "import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute('create table t (x)')"
        subprocess.run([sys.executable, "-c", script, str(database)], check=True, timeout=60)
        made["database"] = stat.S_IMODE(database.stat().st_mode)
        return 0

    monkeypatch.setattr(dev, "run", run)
    umask = os.umask(0o022)
    try:
        assert dev.main(["run"]) == 0
    finally:
        os.umask(umask)
    assert stat.S_IMODE(var.stat().st_mode) == 0o700
    assert made == {"database": 0o600}
