"""Every page states a service's SLO, and what the engine's slo_guard checks, in the same words."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from dashboard.templatetags.tipoff_slo import GUARD_PERCENTILES
from scaling.models import MetricSample
from scaling.policy.rules import slo_breach
from scaling.policy.types import MetricPoint
from scaling.selectors import service_spec
from tests.factories import T0, make_service

pytestmark = pytest.mark.django_db

OBJECTIVE = "SLO: 99.9 % of requests within 300 ms"
GUARD = "guard: p95 ≤ 300 ms, p99 ≤ 300 ms, errors ≤ 0.1 %"


def test_the_guards_percentiles_are_the_ones_the_engine_holds_to_the_limit() -> None:
    service = make_service(slo_latency_ms=300.0, slo_target=0.999)
    over = MetricPoint(ts=T0, rps=1.0, p50_ms=900.0, p95_ms=900.0, p99_ms=900.0)
    assert set(slo_breach(service_spec(service), over)) == {f"{p}_ms" for p in GUARD_PERCENTILES}


def test_the_service_page_states_the_slo_and_the_guard(viewer: Client) -> None:
    service = make_service(slo_latency_ms=300.0, slo_target=0.999)
    body = viewer.get(reverse("dashboard:service", args=[service.name])).content.decode()
    assert f"{OBJECTIVE}; {GUARD}" in body
    assert "p99.9 ≤" not in body


def test_the_fleet_shows_each_percentile_the_guard_checks_against_its_limit(viewer: Client) -> None:
    service = make_service(slo_latency_ms=300.0, slo_target=0.999)
    MetricSample.objects.create(
        service=service, ts=timezone.now(), rps=9.0, p95_ms=120.0, p99_ms=340.0, provisioned=2, ready=2
    )
    body = viewer.get(reverse("dashboard:fleet"), headers={"HX-Request": "true"}).content.decode()
    assert ">p95 · p99 / limit</th>" in body
    assert '<span data-field="p95">120</span> · <span data-field="p99" class="bad">340</span> / 300 ms' in body
    assert "SLO breach" in body  # p99 is over the limit the guard holds it to, though p95 is under it


def test_the_latency_chart_draws_the_guards_limit_and_names_the_slo(viewer: Client) -> None:
    service = make_service(slo_latency_ms=300.0, slo_target=0.999)
    data = viewer.get(reverse("dashboard:service-charts", args=[service.name]) + "?range=1h").json()
    latency = data["figures"]["latency"]["layout"]
    assert latency["title"]["text"] == f"Latency · {OBJECTIVE}"
    assert [a["text"] for a in latency["annotations"]] == ["guard: p95 ≤ 300 ms, p99 ≤ 300 ms"]
