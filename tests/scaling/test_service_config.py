"""A service's serving model must make its SLO reachable."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from scaling.audit import Actor
from scaling.models import GameDayRule, Override, Service
from scaling.service_config import ConfigError, backend_config_from, service_configure, service_create
from tests.factories import make_service

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("test")


def test_it_refuses_an_slo_no_replica_count_can_meet() -> None:
    # 300 ms service time, 1.5 s objective: e^(-5) of requests miss L even unqueued, so 99.9 % is impossible.
    values = {"display_name": "Summaries", "service_time_ms": 300.0, "slo_latency_ms": 1500.0, "slo_target": 0.999}
    with pytest.raises(ConfigError) as caught:
        service_create(name="summaries", values=values, backend_config={}, actor=ACTOR)
    assert caught.value.field == "slo_target" and "cannot be met" in caught.value.message
    assert not Service.objects.filter(name="summaries").exists()


def test_it_accepts_a_reachable_slo_and_stores_the_serving_model() -> None:
    values = {"display_name": "Summaries", "service_time_ms": 200.0, "slo_latency_ms": 2000.0, "concurrency": 8}
    service = service_create(name="summaries", values=values, backend_config={}, actor=ACTOR)
    assert (service.service_time_ms, service.concurrency, service.slo_target) == (200.0, 8, 0.999)


def test_an_edit_that_makes_the_slo_unreachable_changes_nothing() -> None:
    service = make_service()
    with pytest.raises(ConfigError) as caught:
        service_configure(
            service=service, values={"service_time_ms": 400.0}, backend_config={}, actor=ACTOR, reason="x"
        )
    assert caught.value.field == "slo_target"
    service.refresh_from_db()
    assert service.service_time_ms == 40.0


def test_a_provisioning_delay_beyond_a_day_is_refused_naming_the_field() -> None:
    service = make_service()
    with pytest.raises(ConfigError) as caught:
        service_configure(
            service=service, values={"provisioning_delay_s": 10**9}, backend_config={}, actor=ACTOR, reason="typo"
        )
    assert caught.value.field == "provisioning_delay_s" and "a day" in caught.value.message
    service.refresh_from_db()
    assert service.provisioning_delay_s == 180


def test_an_edit_keeps_the_backend_config_keys_the_form_does_not_show() -> None:
    extras = {
        "bearer_token_env": "TIPOFF_PROM_TOKEN_PROD",
        "cpu_cores": 4,
        "period_s": 60,
        "lookback_s": 900,
        "publication_lag_s": 90,
        "latency_stats": {"p95_ms": "Average"},
        "breaker_errors": 5,
        "breaker_cooloff_s": 120,
    }
    service = make_service(backend_config={"prometheus_url": "http://p:9090", "promql": {"rps": "sum(x)"}} | extras)
    form = {"metric_source": "prometheus", "prometheus_url": "http://p:9090", "promql_rps": "sum(rate(x[1m]))"}

    assert service_configure(
        service=service, values={}, backend_config=backend_config_from(form), actor=ACTOR, reason="rate, not total"
    )

    service.refresh_from_db()
    assert service.backend_config == {"prometheus_url": "http://p:9090", "promql": {"rps": "sum(rate(x[1m]))"}} | extras


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "bearer_token_env",
            "TIPOFF_PROM_TOKEN_ PROD",
            "must name an environment variable beginning TIPOFF_PROM_TOKEN_",
        ),
        # Any variable of the server's could be sent to a Prometheus URL of the administrator's choosing.
        ("bearer_token_env", "SECRET_KEY", "not 'SECRET_KEY': Tipoff sends no other variable"),
        ("bearer_token_env", "AWS_SECRET_ACCESS_KEY", "beginning TIPOFF_PROM_TOKEN_"),
        ("bearer_token_env", "TIPOFF_PROM_TOKEN_", "beginning TIPOFF_PROM_TOKEN_ (then letters, digits or _"),
        ("period_s", 45, "a multiple of 60"),
        ("lookback_s", -1, "from 0 to 86400"),
        ("cpu_cores", "many", "must be a number"),
        ("latency_stats", {"p90_ms": "p90"}, "unknown field(s) p90_ms"),
        ("breaker_errors", 0, "from 1 to 1000"),
    ],
)
def test_a_bad_extra_backend_config_value_is_refused_naming_its_key(key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        backend_config_from({key: value})
    assert caught.value.field == key and key in caught.value.message and message in caught.value.message
    # A bad value already stored is named too, instead of being carried into the next edit.
    service = make_service(backend_config={key: value})
    with pytest.raises(ConfigError) as caught:
        service_configure(service=service, values={"min_replicas": 2}, backend_config={}, actor=ACTOR, reason="x")
    assert caught.value.field == key


def _override(service: Service, kind: str, replicas: int, *, start_h: float, end_h: float, **fields: object) -> int:
    now = timezone.now()
    return Override.objects.create(
        service=service,
        kind=kind,
        replicas=replicas,
        reason="marquee game",
        starts_at=now + timedelta(hours=start_h),
        ends_at=now + timedelta(hours=end_h),
        **fields,
    ).pk


def test_a_maximum_below_a_floor_in_force_or_to_come_is_refused_naming_them() -> None:
    # It was accepted: the floors then ran capped at the new maximum, still listed "Approved".
    service = make_service("player-props", max_replicas=60)
    active = _override(service, "floor", 25, start_h=-1, end_h=2)
    upcoming = _override(service, "floor", 40, start_h=3, end_h=5)
    pending = _override(service, "floor", 30, start_h=3, end_h=5, status=Override.Status.PENDING_APPROVAL)
    _override(service, "floor", 55, start_h=-5, end_h=-1)  # over: no matter
    _override(service, "floor", 45, start_h=1, end_h=2, status=Override.Status.CANCELLED)
    rule = GameDayRule.objects.create(name="Playoffs", match={"season_types": ["playoffs"]}, floor_replicas=50)
    rule.services.add(service)
    with pytest.raises(ConfigError) as caught:
        service_configure(
            service=service, values={"max_replicas": 20}, backend_config={}, actor=ACTOR, reason="cap spend"
        )
    assert caught.value.field == "max_replicas"
    for named in (f"#{active} floor 25", f"#{upcoming} floor 40", f"#{pending} floor 30", "rule Playoffs floor 50"):
        assert named in caught.value.message
    assert "floor 55" not in caught.value.message and "floor 45" not in caught.value.message
    service.refresh_from_db()
    assert service.max_replicas == 60
    # At or above the highest of them, the edit goes through.
    assert service_configure(
        service=service, values={"max_replicas": 50}, backend_config={}, actor=ACTOR, reason="cap spend"
    )


def test_a_minimum_above_a_ceiling_or_a_hard_limit_below_a_pin_is_refused() -> None:
    service = make_service(min_replicas=1, max_replicas=50, hard_max_replicas=100)
    ceiling = _override(service, "ceiling", 3, start_h=1, end_h=2)
    pin = _override(service, "pin", 80, start_h=1, end_h=2)
    with pytest.raises(ConfigError) as caught:
        service_configure(service=service, values={"min_replicas": 5}, backend_config={}, actor=ACTOR, reason="x")
    assert caught.value.field == "min_replicas" and f"#{ceiling} ceiling 3" in caught.value.message
    with pytest.raises(ConfigError) as caught:
        service_configure(service=service, values={"hard_max_replicas": 60}, backend_config={}, actor=ACTOR, reason="x")
    assert caught.value.field == "hard_max_replicas" and f"#{pin} pin 80" in caught.value.message


def test_the_migration_stores_the_region_services_ran_under_and_keys_them_from_their_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib

    from django.apps import apps

    from scaling.service_config import target_key

    migration = importlib.import_module("scaling.migrations.0014_service_region_stored")
    endpoint = {"endpoint_name": "win-prob", "variant_name": "AllTraffic"}
    # Saved before regions were stored, and keyed (0013) in the region of the process that migrated then.
    legacy = make_service("legacy", backend="sagemaker", backend_config=endpoint)
    Service.objects.filter(pk=legacy.pk).update(target_key="sagemaker|us-west-2||endpoint/win-prob/variant/alltraffic")
    named = make_service("named", backend="ecs", backend_config={"region": "us-west-2", "cluster": "c", "service": "s"})
    simulated = make_service("simulated")
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")

    migration.store_regions(apps, None)

    legacy.refresh_from_db()
    named.refresh_from_db()
    simulated.refresh_from_db()
    assert legacy.backend_config == endpoint | {"region": "eu-west-1"}
    assert legacy.target_key == "sagemaker|eu-west-1||endpoint/win-prob/variant/alltraffic"
    assert named.backend_config["region"] == "us-west-2" and named.target_key == "ecs|us-west-2||service/c/s"
    assert simulated.backend_config == {} and simulated.target_key is None
    for service in (legacy, named):
        assert target_key(service.backend, service.backend_config) == service.target_key


def test_the_migration_without_a_region_keys_a_service_with_none_whatever_the_process_later_has(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib

    from django.apps import apps

    from scaling.service_config import target_key

    migration = importlib.import_module("scaling.migrations.0014_service_region_stored")
    first = make_service("first", backend="ecs", backend_config={"cluster": "c", "service": "s"})
    second = make_service(
        "second", backend="ecs", backend_config={"cluster": "c", "service": "arn:aws:ecs:x:1:service/c/s"}
    )
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)

    migration.store_regions(apps, None)

    first.refresh_from_db()
    second.refresh_from_db()
    assert "region" not in first.backend_config and first.target_key == "ecs|||service/c/s"
    assert second.target_key is None  # the same target, already keyed: the form names the clash at its next edit
    monkeypatch.setenv("AWS_REGION", "eu-west-1")  # a process that has one keys it the same
    assert target_key(first.backend, first.backend_config) == first.target_key


def test_backend_config_from_stores_this_process_region_and_a_given_one_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    fields = {"backend": "ecs", "metric_source": "prometheus", "cluster": "c", "service": "s"}
    fields |= {"prometheus_url": "http://prom:9090", "promql_rps": "sum(x)"}
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", "ap-southeast-2")
    assert backend_config_from(fields)["region"] == "ap-southeast-2"
    assert backend_config_from(fields | {"region": "eu-central-1"})["region"] == "eu-central-1"
    assert "region" not in backend_config_from({"backend": "simulated", "metric_source": "simulated"})
    with pytest.raises(ConfigError, match=r"^region: 'mars-1' is not an AWS region name, e\.g\. us-east-1 \(taken"):
        monkeypatch.setenv("AWS_REGION", "mars-1")
        backend_config_from(fields)
