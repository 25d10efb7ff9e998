"""The override page and API tests run at their module's NOW, the clock standing still."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import time_machine


@pytest.fixture(autouse=True)
def frozen(request: pytest.FixtureRequest) -> Iterator[object]:
    now = getattr(request.module, "NOW", None)
    if now is None:  # a module that keeps the real clock
        yield None
        return
    with time_machine.travel(now, tick=False) as traveller:
        yield traveller
