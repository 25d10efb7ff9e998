"""A service's serving model must make its SLO reachable."""

from __future__ import annotations

import pytest

from scaling.audit import Actor
from scaling.models import Service
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
        "bearer_token_env": "PROM_TOKEN",
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
        ("bearer_token_env", "PROM TOKEN", "must name an environment variable"),
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
