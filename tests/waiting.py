"""Waiting for another process (a Celery worker, a Prometheus scrape) to reach a state.

Not a sleep on time: the condition is checked every `interval_s` and the wait
ends as soon as it holds, failing the test if it never does.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(
    predicate: Callable[[], object],
    *,
    timeout_s: float = 30.0,
    interval_s: float = 0.1,
    ignore: tuple[type[BaseException], ...] = (),
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if predicate():
                return
        except ignore:
            pass
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout_s:g} s")
        time.sleep(interval_s)
