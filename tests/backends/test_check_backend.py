"""`manage.py check_backend SERVICE` and the probe behind the Test connection button: read-only, plain words."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from scaling import services
from scaling.backends.probe import probe_connection
from tests.backends.conftest import (
    RecordingProxy,
    create_sagemaker_endpoint,
    decision_of,
    publish_invocations,
    register_target,
    restricted_credentials,
    sagemaker_service,
)

pytestmark = pytest.mark.django_db


def _run(name: str) -> str:
    out = StringIO()
    call_command("check_backend", name, stdout=out)
    return out.getvalue()


def test_it_reports_observed_counts_and_metrics_with_read_calls_only(recording_proxy: RecordingProxy) -> None:
    create_sagemaker_endpoint(recording_proxy.url, instances=3)
    publish_invocations(recording_proxy.url, services.align_tick(timezone.now()), per_minute=6000)
    sagemaker_service()
    recording_proxy.calls.clear()

    output = _run("win-probability")

    assert "endpoint InService; 3 ready of 3 provisioned" in output
    assert "No Application Auto Scaling target" in output
    assert "100.0 req/s" in output
    assert recording_proxy.writes() == []


def test_it_says_when_application_auto_scaling_owns_the_endpoint(aws: str) -> None:
    create_sagemaker_endpoint(aws, instances=2)
    register_target(aws, "sagemaker", "endpoint/win-prob/variant/AllTraffic", "sagemaker:variant:DesiredInstanceCount")
    sagemaker_service()

    assert "WARN  owned by Application Auto Scaling (min 1, max 10)" in _run("win-probability")


def test_it_names_an_unknown_endpoint_and_fails(aws: str) -> None:
    sagemaker_service(endpoint="typo-endpoint")
    out = StringIO()
    with pytest.raises(CommandError, match="connection test failed"):
        call_command("check_backend", "win-probability", stdout=out)
    assert "unknown resource: SageMaker endpoint 'typo-endpoint'" in out.getvalue()


@pytest.mark.parametrize(
    "config", [{"region": "us east-1"}, {"endpoint_url": "http://bad host"}, {"endpoint_url": "https://"}]
)
def test_a_stored_malformed_region_or_endpoint_is_a_plain_error_not_a_crash(aws: str, config: dict[str, str]) -> None:
    # Stored before the form checked them (or written around it): the probe and the tick report, never raise.
    service = sagemaker_service(**config)

    report = probe_connection(service, timezone.now())
    tick = services.align_tick(timezone.now())
    decision = decision_of(services.service_evaluate(service_id=service.pk, tick_at=tick))

    assert not report.ok
    assert [line.level for line in report.lines] == ["error", "error"], report
    assert all("cannot build the AWS" in line.text for line in report.lines), report
    assert "cannot build the AWS sagemaker client" in decision.summary


def test_it_names_the_missing_metrics_permission(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    create_sagemaker_endpoint(aws, instances=2)
    service = sagemaker_service()
    with restricted_credentials(
        aws, monkeypatch, ["sagemaker:DescribeEndpoint", "application-autoscaling:DescribeScalableTargets"]
    ):
        report = probe_connection(service, timezone.now())

    assert not report.ok
    assert any("missing permission cloudwatch:GetMetricData" in line.text for line in report.lines), report


def test_it_rejects_an_unknown_service_name() -> None:
    with pytest.raises(CommandError, match="no service named 'nope'"):
        call_command("check_backend", "nope", stdout=StringIO())
