"""The override form's htmx preview: nothing priced from a time that is not valid, the engine's bounds and
precedence applied to what it projects, and columns an operator can check the arithmetic of."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from tests.factories import make_service, make_user

pytestmark = pytest.mark.django_db

# Saturday 2026-10-31 08:00 in New York; the clocks fall back at 02:00 tomorrow.
NOW = datetime(2026, 10, 31, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen() -> object:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def operator(client: Client) -> Client:
    client.force_login(make_user("operator", "operator"))
    return client


def _form(**extra: object) -> dict[str, object]:
    data: dict[str, object] = {
        "services": ["win-probability"],
        "kind": "floor",
        "replicas": "6",
        "starts_at_local": "2026-10-31T10:00",
        "ends_at_local": "2026-10-31T12:00",
        "reason": "",
    }
    return data | extra


def _preview(client: Client, **extra: object) -> str:
    response = client.post(reverse("dashboard:override-preview"), _form(**extra), headers={"HX-Request": "true"})
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("starts_at_local", "2026-11-01T01:30", "happens twice"),  # the fall-back fold
        ("starts_at_local", "2026-03-08T02:30", "does not exist"),  # the spring-forward gap (in the past: no matter)
        ("ends_at_local", "2026-11-01T01:30", "happens twice"),
        ("ends_at_local", "2026-31-01T01:30", "enter a date and time"),
    ],
)
def test_it_prices_nothing_while_a_time_is_invalid(operator: Client, field: str, value: str, message: str) -> None:
    make_service("win-probability", price_per_replica_hour=2.0)
    body = _preview(operator, **{field: value})
    assert message in body
    assert "preview-table" not in body and "$" not in body and "may last at most" not in body


def test_it_prices_a_valid_window_without_a_reason(operator: Client) -> None:
    make_service("win-probability", price_per_replica_hour=2.0)
    body = _preview(operator)
    assert "preview-table" in body and "extra" in body
