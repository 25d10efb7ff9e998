"""The fleet page shows a real backend's circuit breaker and Application Auto Scaling ownership."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from scaling.models import ActuatorHealth
from tests.backends.conftest import sagemaker_service
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_it_shows_actuator_unavailable_with_the_last_error(client: Client) -> None:
    service = sagemaker_service()
    ActuatorHealth.objects.create(
        service=service,
        consecutive_errors=3,
        last_error="AWS throttled sagemaker:DescribeEndpoint on SageMaker endpoint 'win-prob' after retries",
        open_until=timezone.now() + timedelta(minutes=5),
    )
    client.force_login(make_user("viewer", role="viewer"))

    text = client.get("/").content.decode()

    assert "Actuator unavailable" in text
    assert "AWS throttled sagemaker:DescribeEndpoint" in text


def test_it_recovers_on_screen_when_the_cool_off_ends(client: Client) -> None:
    service = sagemaker_service()
    ActuatorHealth.objects.create(
        service=service, consecutive_errors=3, last_error="boom", open_until=timezone.now() - timedelta(seconds=1)
    )
    client.force_login(make_user("viewer", role="viewer"))

    assert "Actuator unavailable" not in client.get("/").content.decode()


def test_it_says_when_application_auto_scaling_owns_the_capacity(client: Client) -> None:
    service = sagemaker_service()
    ActuatorHealth.objects.create(service=service, note="owned by Application Auto Scaling (min 1, max 10)")
    client.force_login(make_user("root", role="admin"))

    text = client.get("/").content.decode()

    assert "Owned by Application Auto Scaling" in text
    assert "Add a service" in text
    assert "Edit backend" in client.get(f"/services/{service.name}/").content.decode()
