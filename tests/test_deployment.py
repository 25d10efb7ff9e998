"""The production-like stack description stays valid."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

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


def test_docker_compose_config_accepts_it() -> None:
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode == 0
    ):
        command = ["docker", "compose", "config", "-q"]
    elif shutil.which("docker-compose"):
        command = ["docker-compose", "config", "-q"]
    else:
        import pytest

        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    result = subprocess.run(
        command, cwd=ROOT, env=os.environ | {"SECRET_KEY": "x"}, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
