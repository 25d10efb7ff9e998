"""The suite runs on pytest-xdist workers, each with its own Redis database (tests/parallel.py)."""

from __future__ import annotations

import pytest

from scripts import dev
from tests.parallel import worker_redis_url


@pytest.mark.parametrize(
    ("url", "worker", "expected"),
    [
        ("redis://127.0.0.1:6379/0", "gw0", "redis://127.0.0.1:6379/0"),
        ("redis://127.0.0.1:6379/0", "gw1", "redis://127.0.0.1:6379/1"),
        ("redis://127.0.0.1:6379", "gw2", "redis://127.0.0.1:6379/2"),
        (
            "rediss://:secret@cache.internal:6380/4?ssl_cert_reqs=none",
            "gw3",
            "rediss://:secret@cache.internal:6380/7?ssl_cert_reqs=none",
        ),
    ],
)
def test_each_worker_takes_the_base_database_plus_its_number(url: str, worker: str, expected: str) -> None:
    assert worker_redis_url(url, worker) == expected


def test_a_worker_past_the_last_database_is_refused_with_the_url() -> None:
    with pytest.raises(ValueError, match=r"worker gw3 would need Redis database 16"):
        worker_redis_url("redis://127.0.0.1:6379/13", "gw3")


def test_a_socket_url_is_refused_rather_than_shared() -> None:
    with pytest.raises(ValueError, match="redis:// or rediss://"):
        worker_redis_url("unix:///run/redis.sock?db=0", "gw1")


def test_the_runner_asks_for_a_worker_a_core_by_default_and_one_process_on_request() -> None:
    assert dev._parallel({}) == ["-n", "auto", "--dist", "loadfile"]
    assert dev._parallel({"TIPOFF_TEST_WORKERS": "3"}) == ["-n", "3", "--dist", "loadfile"]
    assert dev._parallel({"TIPOFF_TEST_WORKERS": "1"}) == []
    with pytest.raises(SystemExit, match="TIPOFF_TEST_WORKERS='two'"):
        dev._parallel({"TIPOFF_TEST_WORKERS": "two"})
