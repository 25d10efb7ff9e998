"""Busy endpoints, throttling, access denied and the circuit breaker.

How each failure is produced:
- `Updating`: moto finishes UpdateEndpointWeightsAndCapacities instantly and never
  reports Updating, so a botocore Stubber on the SageMaker client answers
  DescribeEndpoint with EndpointStatus=Updating (simulated at the boto3 client level).
- Throttling with retries: a recording HTTP proxy in front of moto answers
  ThrottlingException (HTTP 400) a set number of times; botocore's adaptive
  retries are observed at the HTTP level.
- Repeated failures for the breaker: a botocore Stubber queues ThrottlingException
  client errors (a Stubber short-circuits botocore's retry loop, so each queued
  error is one failed call); an un-queued call would raise, proving none is made.
- Access denied: moto's real IAM enforcement (/moto-api/reset-auth) with an IAM
  user whose policy lacks the update permission.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.stub import Stubber
from django.test import Client
from django.utils import timezone

from scaling import services, tasks
from scaling.audit import Actor, EventType
from scaling.backends import ActuatorError, MetricsUnavailable
from scaling.backends import aws as aws_backend
from scaling.backends.cloudwatch import CloudWatchMetricSource
from scaling.backends.probe import probe_connection
from scaling.backends.sagemaker import SageMakerActuator
from scaling.models import ActuatorHealth, AuditEvent, Decision
from scaling.service_config import service_configure
from tests.backends.conftest import (
    SAGEMAKER_FORM,
    RecordingProxy,
    create_sagemaker_endpoint,
    decision_of,
    publish_invocations,
    restricted_credentials,
    sagemaker_counts,
    sagemaker_service,
)
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def _described(status: str, current: int = 2, desired: int = 2) -> dict[str, Any]:
    now = timezone.now()
    return {
        "EndpointName": "win-prob",
        "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/win-prob",
        "EndpointConfigName": "win-prob-config",
        "EndpointStatus": status,
        "CreationTime": now,
        "LastModifiedTime": now,
        "ProductionVariants": [
            {"VariantName": "AllTraffic", "CurrentInstanceCount": current, "DesiredInstanceCount": desired}
        ],
    }


@pytest.fixture
def stubbed_sagemaker(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    """The SageMaker client Tipoff builds, wrapped in a botocore Stubber; other AWS clients still reach moto."""
    real_client = aws_backend.client
    stubbed = real_client("sagemaker", {})
    stubber = Stubber(stubbed)

    def client(service_name: str, config: dict[str, Any], **kwargs: Any) -> Any:
        return stubbed if service_name == "sagemaker" else real_client(service_name, config, **kwargs)

    monkeypatch.setattr(aws_backend, "client", client)
    with stubber:
        yield stubber


def test_it_records_actuator_busy_and_does_not_call_while_the_endpoint_is_updating(
    stubbed_sagemaker: Stubber, aws: str
) -> None:
    tick = services.align_tick(timezone.now())
    publish_invocations(aws, tick, per_minute=60 * 700)
    service = sagemaker_service()
    stubbed_sagemaker.add_response("describe_endpoint", _described("Updating", current=2, desired=4))

    result = services.service_evaluate(service_id=service.pk, tick_at=tick)

    decision = decision_of(result)
    assert decision.changed
    assert decision.actuation == Decision.Actuation.BUSY
    assert AuditEvent.objects.filter(service=service, event_type=EventType.ACTUATOR_BUSY).exists()
    stubbed_sagemaker.assert_no_pending_responses()  # exactly one DescribeEndpoint, no update call


def test_a_busy_endpoint_is_audited_once_while_it_stays_busy(stubbed_sagemaker: Stubber, aws: str) -> None:
    tick = services.align_tick(timezone.now())
    publish_invocations(aws, tick, per_minute=60 * 700)
    service = sagemaker_service()
    for _ in range(3):
        stubbed_sagemaker.add_response("describe_endpoint", _described("Updating"))

    decisions = [
        decision_of(services.service_evaluate(service_id=service.pk, tick_at=tick + timedelta(seconds=15 * k)))
        for k in range(3)
    ]

    assert [d.actuation for d in decisions] == [Decision.Actuation.BUSY] * 3
    events = AuditEvent.objects.filter(service=service)
    assert [e.object_id for e in events.filter(event_type=EventType.ACTUATOR_BUSY)] == [str(decisions[0].pk)]
    assert events.filter(event_type=EventType.DECISION_SCALED).count() == 1


@pytest.mark.parametrize("state", ["Failed", "OutOfService"])
def test_a_failed_endpoint_is_an_error_not_busy(stubbed_sagemaker: Stubber, aws: str, state: str) -> None:
    tick = services.align_tick(timezone.now())
    publish_invocations(aws, tick, per_minute=60 * 700)
    service = sagemaker_service()
    failed = _described(state) | {"FailureReason": "image not found"}
    stubbed_sagemaker.add_response("describe_endpoint", failed)
    stubbed_sagemaker.add_response("describe_endpoint", failed)

    decision = decision_of(services.service_evaluate(service_id=service.pk, tick_at=tick))
    report = probe_connection(service, timezone.now())

    message = f"SageMaker endpoint 'win-prob' is {state}: image not found; Tipoff cannot scale it until it is InService"
    assert (decision.changed, decision.actuation) == (False, Decision.Actuation.NONE)
    assert message in decision.summary
    assert not AuditEvent.objects.filter(service=service, event_type=EventType.ACTUATOR_BUSY).exists()
    assert ActuatorHealth.objects.get(service=service).last_error == message
    assert report.lines[0].level == "error" and message in report.lines[0].text


def test_it_does_not_update_when_the_endpoint_started_updating_since_the_tick_read(stubbed_sagemaker: Stubber) -> None:
    service = sagemaker_service()
    stubbed_sagemaker.add_response("describe_endpoint", _described("Updating"))

    outcome = SageMakerActuator().set_capacity(service, 5, timezone.now())

    assert outcome.status == "busy"
    stubbed_sagemaker.assert_no_pending_responses()


def test_throttled_calls_are_retried_with_backoff(recording_proxy: RecordingProxy) -> None:
    create_sagemaker_endpoint(recording_proxy.url, instances=2)
    recording_proxy.calls.clear()
    recording_proxy.throttle["DescribeEndpoint"] = 2

    status = SageMakerActuator().read(sagemaker_service())

    assert status.provisioned == 2
    assert recording_proxy.calls.count("DescribeEndpoint") == 3


def test_throttling_beyond_the_retries_is_a_transient_error(
    recording_proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two attempts instead of three keeps the adaptive backoff (real sleeps in botocore) short.
    monkeypatch.setattr(aws_backend, "RETRY_MAX_ATTEMPTS", 2)
    aws_backend.reset_clients()
    create_sagemaker_endpoint(recording_proxy.url, instances=2)
    recording_proxy.calls.clear()
    recording_proxy.throttle["DescribeEndpoint"] = 100

    with pytest.raises(ActuatorError, match="AWS throttled sagemaker:DescribeEndpoint") as info:
        SageMakerActuator().read(sagemaker_service())

    assert not info.value.permanent
    assert recording_proxy.calls.count("DescribeEndpoint") == 2


def test_the_circuit_breaker_opens_after_consecutive_errors_and_recovers_by_itself(
    stubbed_sagemaker: Stubber, aws: str
) -> None:
    service = sagemaker_service(breaker_errors=3, breaker_cooloff_s=300)
    actuator = SageMakerActuator()
    t0 = datetime(2026, 1, 15, 20, 0, tzinfo=UTC)
    for _ in range(3):
        stubbed_sagemaker.add_client_error("describe_endpoint", "ThrottlingException", "Rate exceeded", 400)
    for k in range(3):
        with pytest.raises(ActuatorError, match="throttled"):
            actuator.status(service, t0 + timedelta(seconds=15 * k))

    # Open: no AWS call at all (the Stubber has nothing queued and would raise if called).
    with pytest.raises(ActuatorError, match=r"actuator unavailable until .* last error: AWS throttled"):
        actuator.status(service, t0 + timedelta(seconds=60))
    health = ActuatorHealth.objects.get(service=service)
    assert health.consecutive_errors == 3 and health.unavailable_at(t0 + timedelta(seconds=60))
    assert AuditEvent.objects.filter(service=service, event_type=EventType.ACTUATOR_UNAVAILABLE).count() == 1

    # After the cool-off one call goes through; success closes the breaker.
    stubbed_sagemaker.add_response("describe_endpoint", _described("InService"))
    status = actuator.status(service, t0 + timedelta(seconds=30 + 300))
    assert status.provisioned == 2
    health.refresh_from_db()
    assert (health.consecutive_errors, health.open_until) == (0, None)
    assert AuditEvent.objects.filter(service=service, event_type=EventType.ACTUATOR_RECOVERED).count() == 1


def _update_refused(stubber: Stubber, code: str, message: str) -> None:
    """One actuation on the stubbed endpoint: the re-read before the write, then the write refused."""
    stubber.add_response("describe_endpoint", _described("InService"))
    stubber.add_client_error("update_endpoint_weights_and_capacities", code, message, 400)


def test_writes_that_keep_failing_open_the_breaker_though_every_read_succeeds(
    stubbed_sagemaker: Stubber, aws: str
) -> None:
    service = sagemaker_service(breaker_errors=3, breaker_cooloff_s=300)
    actuator = SageMakerActuator()
    t0 = datetime(2026, 1, 15, 20, 0, tzinfo=UTC)
    for k in range(3):
        at = t0 + timedelta(seconds=15 * k)
        stubbed_sagemaker.add_response("describe_endpoint", _described("InService"))
        assert actuator.status(service, at).provisioned == 2
        _update_refused(stubbed_sagemaker, "ThrottlingException", "Rate exceeded")
        with pytest.raises(ActuatorError, match="throttled"):
            actuator.set_capacity(service, 5, at)

    health = ActuatorHealth.objects.get(service=service)
    assert (health.consecutive_errors, health.write_errors) == (3, 3)
    assert health.unavailable_at(t0 + timedelta(seconds=45))
    with pytest.raises(ActuatorError, match="actuator unavailable"):
        actuator.status(service, t0 + timedelta(seconds=45))  # nothing queued: no call is made
    assert AuditEvent.objects.filter(service=service, event_type=EventType.ACTUATOR_UNAVAILABLE).count() == 1


def test_a_write_refused_for_good_opens_the_breaker_at_once_until_a_write_succeeds(
    stubbed_sagemaker: Stubber, aws: str
) -> None:
    service = sagemaker_service(breaker_errors=3, breaker_cooloff_s=300)
    actuator = SageMakerActuator()
    t0 = datetime(2026, 1, 15, 20, 0, tzinfo=UTC)
    denied = "not authorized to perform: sagemaker:UpdateEndpointWeightsAndCapacities"
    _update_refused(stubbed_sagemaker, "AccessDeniedException", denied)
    with pytest.raises(ActuatorError, match="missing permission"):
        actuator.set_capacity(service, 5, t0)
    with pytest.raises(ActuatorError, match="actuator unavailable"):
        actuator.status(service, t0 + timedelta(seconds=15))

    # After the cool-off the read goes through, but only a write can show the refusal is over.
    later = t0 + timedelta(seconds=301)
    stubbed_sagemaker.add_response("describe_endpoint", _described("InService"))
    actuator.status(service, later)
    _update_refused(stubbed_sagemaker, "AccessDeniedException", denied)
    with pytest.raises(ActuatorError, match="missing permission"):
        actuator.set_capacity(service, 5, later)
    assert ActuatorHealth.objects.get(service=service).unavailable_at(later + timedelta(seconds=15))

    # Once a write succeeds the breaker closes. Opening and recovery are each audited once.
    latest = later + timedelta(seconds=301)
    stubbed_sagemaker.add_response("describe_endpoint", _described("InService"))
    updated = {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/win-prob"}
    stubbed_sagemaker.add_response("update_endpoint_weights_and_capacities", updated)
    assert actuator.set_capacity(service, 5, latest).status == "ok"
    health = ActuatorHealth.objects.get(service=service)
    assert (health.consecutive_errors, health.write_errors, health.open_until) == (0, 0, None)
    events = AuditEvent.objects.filter(service=service)
    assert events.filter(event_type=EventType.ACTUATOR_UNAVAILABLE).count() == 1
    assert events.filter(event_type=EventType.ACTUATOR_RECOVERED).count() == 1
    stubbed_sagemaker.assert_no_pending_responses()


def test_the_control_tick_holds_while_the_breaker_is_open(stubbed_sagemaker: Stubber, aws: str) -> None:
    service = sagemaker_service(breaker_errors=1)
    tick = services.align_tick(timezone.now())
    publish_invocations(aws, tick, per_minute=60 * 700)
    stubbed_sagemaker.add_client_error("describe_endpoint", "ThrottlingException", "Rate exceeded", 400)

    first = decision_of(services.service_evaluate(service_id=service.pk, tick_at=tick))
    second = decision_of(services.service_evaluate(service_id=service.pk, tick_at=tick + timedelta(seconds=15)))

    assert (first.changed, second.changed) == (False, False)
    assert "actuator unavailable" in second.summary
    stubbed_sagemaker.assert_no_pending_responses()


def test_it_names_the_missing_permission_when_access_is_denied(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    create_sagemaker_endpoint(aws, instances=2)
    service = sagemaker_service()
    allowed = ["sagemaker:DescribeEndpoint", "application-autoscaling:DescribeScalableTargets"]
    with restricted_credentials(aws, monkeypatch, allowed):
        status = SageMakerActuator().read(service)
        with pytest.raises(ActuatorError) as info:
            SageMakerActuator().set_capacity(service, 5, timezone.now())

    assert status.provisioned == 2
    assert "missing permission sagemaker:UpdateEndpointWeightsAndCapacities on SageMaker endpoint 'win-prob'" in str(
        info.value
    )
    assert info.value.permanent
    assert sagemaker_counts(aws) == (2, 2, "InService")


def _without_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a host with no role, profile or keys (the instance metadata service not asked)."""
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    aws_backend.reset_clients()


def test_an_actuator_that_cannot_read_the_fleet_is_an_actuator_failure_not_a_metrics_one(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_sagemaker_endpoint(aws, instances=2)
    tick = services.align_tick(timezone.now())
    publish_invocations(aws, tick, per_minute=60 * 700)
    service = sagemaker_service()
    _without_credentials(monkeypatch)

    decision = decision_of(services.service_evaluate(service_id=service.pk, tick_at=tick))

    assert decision.reason_code == "ACTUATOR_UNAVAILABLE"
    assert "metrics unavailable" not in decision.summary and "metric source" not in decision.summary
    assert "actuator unavailable: no AWS credentials found" in decision.summary
    assert not decision.changed


def test_a_failing_tick_logs_a_warning_naming_the_service_and_the_failure(
    aws: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    create_sagemaker_endpoint(aws, instances=2)
    tick = services.align_tick(timezone.now())
    service = sagemaker_service()
    _without_credentials(monkeypatch)

    with caplog.at_level(logging.INFO):
        tasks.evaluate_service.run(service.pk, tick.isoformat())

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("scaling")]
    assert any(
        f"service win-probability (id {service.pk})" in m and "actuator unavailable: no AWS credentials found" in m
        for m in warnings
    ), warnings
    infos = [r.getMessage() for r in caplog.records if r.name == "scaling.tasks"]
    assert infos == [f"service win-probability (id {service.pk}) tick {tick.isoformat()}: decided"]


def test_a_tick_without_metrics_logs_a_warning_naming_the_service(
    aws: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    create_sagemaker_endpoint(aws, instances=2)
    tick = services.align_tick(timezone.now())
    service = sagemaker_service()

    def broken(self: object, svc: object, now: datetime) -> None:
        raise MetricsUnavailable("cannot reach CloudWatch: connection refused")

    monkeypatch.setattr(CloudWatchMetricSource, "fetch", broken)
    with caplog.at_level(logging.INFO):
        services.service_evaluate(service_id=service.pk, tick_at=tick)

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("scaling")]
    assert any(
        f"service win-probability (id {service.pk})" in m and "metrics unavailable: cannot reach CloudWatch" in m
        for m in warnings
    ), warnings


_FORM = SAGEMAKER_FORM | {"max_replicas": "20", "price_per_replica_hour": "1.5"}


def _open_without_credentials(aws: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, datetime]:
    """A service whose breaker opened while Tipoff had no credentials, then the credentials came back."""
    create_sagemaker_endpoint(aws, instances=2)
    tick = services.align_tick(timezone.now())
    publish_invocations(aws, tick, per_minute=60 * 700)
    service = sagemaker_service()
    with monkeypatch.context() as m:
        _without_credentials(m)
        services.service_evaluate(service_id=service.pk, tick_at=tick)
        # One failed call a tick, however many calls a tick makes.
        assert ActuatorHealth.objects.get(service=service).consecutive_errors == 1
        for k in (1, 2):
            services.service_evaluate(service_id=service.pk, tick_at=tick + timedelta(seconds=15 * k))
    health = ActuatorHealth.objects.get(service=service)
    assert health.consecutive_errors == 3 and health.unavailable_at(tick + timedelta(seconds=45))
    aws_backend.reset_clients()
    return service, tick + timedelta(seconds=45)


def test_a_test_connection_that_reads_the_fleet_closes_the_breaker_at_once(
    aws: str, monkeypatch: pytest.MonkeyPatch, client: Client
) -> None:
    service, tick = _open_without_credentials(aws, monkeypatch)
    admin = make_user("root", role="admin")
    client.force_login(admin)

    probe = client.post("/services/test-connection/", _FORM, headers={"HX-Request": "true"}).content.decode()

    assert "endpoint InService" in probe
    assert "Circuit breaker closed" in probe
    health = ActuatorHealth.objects.get(service=service)
    assert (health.consecutive_errors, health.open_until) == (0, None)
    recovered = AuditEvent.objects.get(service=service, event_type=EventType.ACTUATOR_RECOVERED)
    assert recovered.actor_label == "root" and "Test connection" in recovered.reason
    decision = decision_of(services.service_evaluate(service_id=service.pk, tick_at=tick))
    assert decision.reason_code != "ACTUATOR_UNAVAILABLE" and "actuator unavailable" not in decision.summary


def test_a_test_connection_of_another_resource_leaves_the_breaker_alone(
    aws: str, monkeypatch: pytest.MonkeyPatch, client: Client
) -> None:
    service, _ = _open_without_credentials(aws, monkeypatch)
    create_sagemaker_endpoint(aws, name="other", instances=1)
    client.force_login(make_user("root", role="admin"))

    probe = client.post(
        "/services/test-connection/", _FORM | {"endpoint_name": "other"}, headers={"HX-Request": "true"}
    ).content.decode()

    assert "endpoint InService" in probe and "Circuit breaker" not in probe
    assert ActuatorHealth.objects.get(service=service).open_until is not None


def test_editing_the_backend_settings_closes_the_breaker(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    service, _ = _open_without_credentials(aws, monkeypatch)
    admin = make_user("root", role="admin")

    service_configure(
        service=service,
        values={},
        backend_config=service.backend_config | {"region": "us-east-1"},
        actor=Actor.for_user(admin),
        reason="credentials fixed; region set",
    )

    health = ActuatorHealth.objects.get(service=service)
    assert (health.consecutive_errors, health.write_errors, health.open_until) == (0, 0, None)
    recovered = AuditEvent.objects.get(service=service, event_type=EventType.ACTUATOR_RECOVERED)
    assert recovered.actor_label == "root" and "credentials fixed; region set" in recovered.reason
