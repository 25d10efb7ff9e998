"""The production-like stack description stays valid."""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_docker_compose_describes_the_whole_stack() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert set(compose["services"]) == {"postgres", "redis", "web", "worker", "whatif", "beat"}
    # The control ticks and the what-if replays each have a worker consuming only their queue.
    assert "--queues=celery" in compose["services"]["worker"]["command"]
    assert "--queues=whatif" in compose["services"]["whatif"]["command"]
    for name in ("web", "worker", "whatif", "beat"):
        env = compose["x-tipoff"]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and env["REDIS_URL"].startswith("redis://"), name
    # A worker exits for good after a long broker outage or a crash: every process comes back by itself.
    for name, service in compose["services"].items():
        assert {**compose["x-tipoff"], **service}.get("restart") == "unless-stopped", name


def test_docker_compose_config_accepts_it() -> None:
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode == 0
    ):
        command = ["docker", "compose", "config", "-q"]
    elif shutil.which("docker-compose"):
        command = ["docker-compose", "config", "-q"]
    else:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    result = subprocess.run(
        command, cwd=ROOT, env=os.environ | {"SECRET_KEY": "x"}, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def _dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip().strip("/") for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's reading, near enough for these paths: the last pattern that matches the path or a folder above
    it decides, a `!` one re-including."""
    parts = path.split("/")
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        glob = pattern.removeprefix("!").strip("/")
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatchcase(c, glob) or fnmatch.fnmatchcase(c, glob.removeprefix("**/")) for c in candidates):
            ignored = not negated
    return ignored


@pytest.mark.parametrize(
    "path",
    [
        "var/secret_key",  # `make run`'s key
        "var/tipoff.sqlite3",  # the demo's database, its users' password hashes with it
        ".venv/bin/python",
        ".git/config",
        "staticfiles/css/app.css",  # collected afresh in the image
        "scaling/__pycache__/models.cpython-311.pyc",
    ],
)
def test_the_image_leaves_out_local_state(path: str) -> None:
    assert _ignored(path, _dockerignore_patterns())


@pytest.mark.parametrize(
    "path", ["requirements.txt", "manage.py", "config/settings.py", "static/css", "templates/base.html", "data"]
)
def test_the_image_keeps_what_it_runs(path: str) -> None:
    assert not _ignored(path, _dockerignore_patterns())


def test_the_image_collects_static_files_at_build_time_as_root() -> None:
    # The app runs as `tipoff`, who owns only /app/var: it could not create /app/staticfiles or write into it.
    dockerfile = (ROOT / "Dockerfile").read_text()
    before_user = dockerfile[: dockerfile.index("\nUSER ")]
    assert "manage.py collectstatic" in before_user
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        assert "collectstatic" not in str(service.get("command", "")), name


def test_the_settings_load_where_static_root_cannot_be_created() -> None:
    # The image's /app belongs to root; were staticfiles/ missing, creating it would raise PermissionError there.
    deny = (
        "import pathlib, django, os\n"
        "mkdir = pathlib.Path.mkdir\n"
        "def deny(self, *args, **kwargs):\n"
        "    if self.name == 'staticfiles':\n"
        "        raise PermissionError(13, 'Permission denied', str(self))\n"
        "    return mkdir(self, *args, **kwargs)\n"
        "pathlib.Path.mkdir = deny\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings')\n"
        "django.setup()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", deny], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.django_db
@pytest.mark.usefixtures("on_postgres")
def test_postgresql_ends_a_session_left_idle_inside_a_transaction() -> None:
    # A worker stopped inside a transaction held the audit chain's head: every tick and login waited behind it.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW idle_in_transaction_session_timeout")
        assert cursor.fetchone() == ("1min",)
