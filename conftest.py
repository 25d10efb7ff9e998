"""Suite-wide fixtures. Tests that need a missing part skip with a reason, except
under CI=true, where every part must be present and nothing skips."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def require(condition: bool, reason: str) -> None:
    """Skip locally when a part is missing; fail in CI, where everything must run."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def on_postgres() -> None:
    from django.db import connection

    require(connection.vendor == "postgresql", "this test needs PostgreSQL (set DATABASE_URL=postgres://...)")


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    path = chromium_path()
    require(path is not None, "Chromium is not installed (apt-get install chromium)")
    # Playwright keeps an event loop running in this thread; the ORM calls the
    # tests make around it are still synchronous and safe.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(
            executable_path=path,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"],
        )
        yield instance
        instance.close()


@pytest.fixture
def whatif_slots_free() -> Iterator[None]:
    """No what-if slots held before or after the test: they live in Redis, which outlives the test's database,
    where a later test's user may get the same id."""
    from scaling.services import redis_client

    def free() -> None:
        for key in redis_client().scan_iter("tipoff:whatif:slots:*"):
            redis_client().delete(key)

    free()
    yield
    free()
