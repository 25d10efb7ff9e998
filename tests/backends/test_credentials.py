"""Credentials in a backend's URL: refused when given, and never in a backend's error text, which viewers read
(decision summaries, the service page, the API, the audit log) and the workers log."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from django.test import Client

from scaling.backends import aws as aws_backend
from scaling.backends.base import BackendError, MetricsUnavailable, without_credentials
from scaling.backends.sagemaker import SageMakerActuator
from scaling.models import AuditEvent, Service
from scaling.service_config import ConfigError, backend_config_from
from tests.backends.conftest import sagemaker_service
from tests.factories import make_user


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "cannot reach Prometheus at http://ops:s3cret@prom.example:9090/: refused",
            "cannot reach Prometheus at http://prom.example:9090/: refused",
        ),
        ("(got 'https://prom.example/?token=s3cret&x=1')", "(got 'https://prom.example/')"),
        (
            'Could not connect to the endpoint URL: "https://u:s3cret@sm.example/endpoints/x?X-Amz-Signature=s3cret"',
            'Could not connect to the endpoint URL: "https://sm.example/endpoints/x"',
        ),
        (
            "a password with an @ in it: http://ops:s3c@ret@prom.example/",
            "a password with an @ in it: http://prom.example/",
        ),
        # Nothing to take out: a URL without either, and a question that is no URL's.
        (
            "Prometheus at http://prometheus:9090 did not answer 'sum(x)'",
            "Prometheus at http://prometheus:9090 did not answer 'sum(x)'",
        ),
        ("is it up? ask ops@example.com", "is it up? ask ops@example.com"),
    ],
)
def test_a_backend_error_keeps_no_user_password_or_query_of_a_url(text: str, shown: str) -> None:
    assert without_credentials(text) == shown
    assert str(BackendError(text)) == shown
    assert str(MetricsUnavailable(text, permanent=True)) == shown


@pytest.mark.django_db
def test_an_aws_endpoint_it_cannot_reach_is_named_without_its_credentials(aws: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    aws_backend.reset_clients()
    service = sagemaker_service(endpoint_url=f"http://ops:s3cret@127.0.0.1:{closed}")

    with pytest.raises(BackendError) as info:
        SageMakerActuator().read(service)

    assert f"http://127.0.0.1:{closed}/" in str(info.value)
    assert "s3cret" not in str(info.value)


@pytest.mark.parametrize(
    ("given", "field", "points_to"),
    [
        (
            {"metric_source": "prometheus", "prometheus_url": "http://ops:s3cret@prom:9090", "promql_rps": "sum(x)"},
            "prometheus_url",
            "TIPOFF_PROM_TOKEN_<NAME> and name that variable in bearer_token_env",
        ),
        (
            {"metric_source": "prometheus", "prometheus_url": "https://ops@prom:9090", "promql_rps": "sum(x)"},
            "prometheus_url",
            "bearer_token_env",
        ),
        (
            {"backend": "sagemaker", "metric_source": "cloudwatch", "endpoint_name": "win-prob"}
            | {"endpoint_url": "https://ops:s3cret@sagemaker.example"},
            "endpoint_url",
            "AWS credentials come from the role or the AWS_* variables",
        ),
    ],
)
def test_a_url_with_a_user_and_password_is_refused_naming_the_field(
    given: dict[str, Any], field: str, points_to: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        backend_config_from(given)
    assert caught.value.field == field
    assert f"{field} must not hold a user or password (user:password@ before the host)" in caught.value.message
    assert points_to in caught.value.message
    assert "s3cret" not in caught.value.message


@pytest.mark.django_db
def test_the_api_refuses_a_prometheus_url_with_credentials_and_audits_none(client: Client) -> None:
    # Accepted, they were shown in the service.created event's snapshot to every viewer of the audit log.
    client.force_login(make_user("root", role="admin"))
    body: dict[str, Any] = {
        "name": "props",
        "display_name": "Props",
        "backend": "simulated",
        "metric_source": "prometheus",
    }
    body |= {"prometheus_url": "http://ops:s3cret@127.0.0.1:9871/", "promql": {"rps": "sum(x)"}}

    refused = client.post("/api/admin/services", data=json.dumps(body), content_type="application/json")

    assert refused.status_code == 422, refused.content
    assert refused.json()["field"] == "prometheus_url" and "bearer_token_env" in refused.json()["detail"]
    assert not Service.objects.exists()
    assert not AuditEvent.objects.filter(event_type="service.created").exists()
