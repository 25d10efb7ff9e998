from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any, get_args
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from dashboard.charts import chart_clock
from dashboard.templatetags.tipoff_time import local_time
from scaling import selectors, services
from scaling.audit import Actor
from scaling.models import Decision, MetricSample, Override, Service
from tests.factories import make_service, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_in(client: Client) -> Client:
    client.force_login(make_user("viewer", "viewer"))
    return client


def test_the_fleet_page_needs_a_login(client: Client) -> None:
    response = client.get(reverse("dashboard:fleet"))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_fleet_page_lists_every_service_with_its_numbers(client_in: Client) -> None:
    service = make_service(demand_scale=40.0)
    services.service_evaluate(service_id=service.pk, tick_at=services.align_tick(timezone.now()))
    response = client_in.get(reverse("dashboard:fleet"))
    body = response.content.decode()
    assert response.status_code == 200
    assert service.display_name in body and "SCALED_OUT" in body and "hx-get" in body


def test_an_htmx_poll_gets_only_the_table(client_in: Client) -> None:
    make_service()
    response = client_in.get(reverse("dashboard:fleet"), headers={"HX-Request": "true"})
    body = response.content.decode()
    assert "<table" in body and "<html" not in body


@pytest.mark.parametrize(
    ("signals", "breach"),
    [
        ({"p95_ms": 250.0, "p99_ms": 280.0, "error_rate": 0.0}, None),
        ({"p95_ms": 320.0, "p99_ms": 400.0}, "p95_ms 320.0, p99_ms 400.0"),
        ({"p95_ms": 250.0, "p99_ms": 450.0}, "p99_ms 450.0"),
        ({"p95_ms": 250.0, "p99_ms": 280.0, "error_rate": 0.02}, "error_rate 0.02"),
    ],
    ids=["within", "p95", "p99-only", "errors-only"],
)
def test_the_fleet_badge_judges_the_slo_as_the_engine_does(
    client_in: Client, signals: dict[str, float], breach: str | None
) -> None:
    service = make_service(slo_latency_ms=300.0, slo_target=0.99)
    MetricSample.objects.create(service=service, ts=timezone.now(), rps=900.0, provisioned=4, ready=4, **signals)
    body = client_in.get(reverse("dashboard:fleet"), headers={"HX-Request": "true"}).content.decode()
    if breach is None:
        assert "Within SLO" in body and "SLO breach" not in body
    else:
        assert "Within SLO" not in body and f'data-badge="slo-breach" title="{breach}"' in body


def test_the_fleet_poll_costs_the_same_queries_for_2_or_12_services(client_in: Client) -> None:
    now = timezone.now()

    def poll_with(n: int, start: int) -> tuple[int, str]:
        for i in range(start, start + n):
            service = make_service(f"svc-{i}")
            MetricSample.objects.create(
                service=service, ts=now - timedelta(seconds=20), rps=1.0, provisioned=2, ready=2
            )
            MetricSample.objects.create(service=service, ts=now, rps=1.0, provisioned=3 + i, ready=2)
            window = {"kind": "floor", "replicas": 4, "reason": "x", "ends_at": now + timedelta(hours=1)}
            # In force before the latest decision ran, which applied it.
            Override.objects.create(service=service, starts_at=now - timedelta(minutes=5), **window)
            for minutes, desired in ((1, 2), (0, 10 + i)):
                Decision.objects.create(
                    service=service,
                    tick=now - timedelta(minutes=minutes),
                    provisioned=2,
                    ready=2,
                    desired=desired,
                    reason_code="HOLD",
                    summary="",
                )
            for _ in range(i % 3):
                Override.objects.create(
                    service=service,
                    starts_at=now + timedelta(minutes=5),
                    status=Override.Status.PENDING_APPROVAL,
                    **window,
                )
        with CaptureQueriesContext(connection) as queries:
            body = client_in.get(reverse("dashboard:fleet"), headers={"HX-Request": "true"}).content.decode()
        return len(queries), body

    two, _ = poll_with(2, 0)
    twelve, body = poll_with(10, 2)
    assert twelve == two, f"{two} queries for 2 services, {twelve} for 12"
    # Each row still shows its own service's latest sample, latest decision and overrides.
    row = body[body.index('data-service="svc-7"') :]
    row = row[: row.index("</tr>")]
    assert '<td class="num" data-field="provisioned">10</td>' in row
    assert '<td class="num" data-field="desired">17</td>' in row
    assert ">Override</span>" in row and ">1 pending approval</span>" in row


def test_the_fleet_says_an_override_in_force_is_not_applied_while_paused_or_dry_running_and_until_when(
    client_in: Client, settings: Any
) -> None:
    settings.OPERATOR_TIME_ZONE = "America/New_York"
    now = timezone.now()
    until = (now + timedelta(hours=1)).replace(second=0, microsecond=0)
    for name, mode in [("held", "paused"), ("watched", "dry_run"), ("live", "active")]:
        service = make_service(name)
        Override.objects.create(
            service=service, kind="floor", replicas=25, reason="tv", starts_at=now - timedelta(minutes=5),
            ends_at=now + timedelta(hours=2),
        )  # fmt: skip
        if mode != "active":
            services.service_set_mode(service=service, mode=mode, actor=Actor.system("t"), reason="r", until=until)
    body = client_in.get(reverse("dashboard:fleet")).content.decode()

    def row(name: str) -> str:
        found = body[body.index(f'data-service="{name}"') :]
        return found[: found.index("</tr>")]

    ends = local_time(until, "%a %H:%M")
    assert ">Paused</span>" in row("held") and f"until {ends}" in row("held")
    assert ">Override (not applied: paused)</span>" in row("held")
    assert ">Dry run</span>" in row("watched") and f"until {ends}" in row("watched")
    assert ">Override (dry run: not applied)</span>" in row("watched")
    # No tick has run since it came into force: in force, but not applied yet either.
    assert ">Override (waiting for the next tick)</span>" in row("live") and "until" not in row("live")


def test_a_tick_held_on_a_refused_policy_shows_on_the_fleet_and_service_pages_saying_what_to_fix(
    client_in: Client,
) -> None:
    service = make_service(replicas=8, demand_scale=0.01)
    Service.objects.filter(pk=service.pk).update(policy={"scale_up_percent": 20_000})  # saved before the range
    services.service_evaluate(service_id=service.pk, tick_at=services.align_tick(timezone.now()))
    problem = "policy parameter scale_up_percent must be in [0, 10000], not 20000"
    fleet = client_in.get(reverse("dashboard:fleet")).content.decode()
    page = client_in.get(reverse("dashboard:service", args=[service.name])).content.decode()
    for body in (fleet, page):
        assert '<span class="code">POLICY_INVALID</span>' in body and "Held at 8: stored policy refused" in body
        assert problem in body
    decision = Decision.objects.get(service=service)
    detail = client_in.get(reverse("dashboard:decision", args=[decision.pk])).content.decode()
    assert "Save a valid policy on the service&#x27;s policy page" in detail
    assert "No forecast: the stored policy was refused" in detail


def test_an_unknown_service_is_a_404_page(client_in: Client) -> None:
    response = client_in.get(reverse("dashboard:service", args=["no-such-service"]))
    assert response.status_code == 404
    assert "Not found" in response.content.decode()


def test_the_service_page_and_its_chart_data(client_in: Client) -> None:
    service = make_service(demand_scale=40.0)
    services.service_evaluate(service_id=service.pk, tick_at=services.align_tick(timezone.now()))
    page = client_in.get(reverse("dashboard:service", args=[service.name]) + "?range=1h")
    assert page.status_code == 200 and "data-chart-url" in page.content.decode()
    data = client_in.get(reverse("dashboard:service-charts", args=[service.name]) + "?range=1h").json()
    assert set(data["figures"]) == {"replicas", "latency", "rate", "cost"}
    replicas = data["figures"]["replicas"]["data"]
    assert replicas[0]["name"] == "desired" and len(replicas[0]["y"]) == 1


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({}, "metrics: Simulator"),
        (
            {
                "backend": "sagemaker",
                "metric_source": "cloudwatch",
                "backend_config": {"endpoint_name": "win-prob", "region": "us-west-2"},
            },
            "metrics: CloudWatch AWS/SageMaker and /aws/sagemaker/Endpoints in us-west-2",
        ),
        (
            {
                "backend": "ecs",
                "metric_source": "cloudwatch",
                "backend_config": {
                    "cluster": "c",
                    "service": "s",
                    "load_balancer": "app/a/1",
                    "target_group": "targetgroup/t/2",
                    "region": "eu-west-1",
                },
            },
            "metrics: CloudWatch AWS/ECS and AWS/ApplicationELB in eu-west-1",
        ),
        (
            {
                "metric_source": "prometheus",
                "backend_config": {"prometheus_url": "https://ops:s3cret@prom.example:9090/", "promql": {"rps": "x"}},
            },
            "metrics: Prometheus at https://prom.example:9090/",
        ),
    ],
)
def test_the_service_page_header_names_the_metric_source(
    client_in: Client, fields: dict[str, Any], said: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The header named the backend, never where the metrics the decisions read came from.
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    service = make_service(**fields)
    body = client_in.get(reverse("dashboard:service", args=[service.name])).content.decode()
    header = body.split('data-testid="metric-source">', 1)[1].split("</span>", 1)[0]
    assert header == said
    assert "s3cret" not in body


def test_the_service_chart_data_refuses_an_unknown_range_and_its_page_says_what_it_shows(client_in: Client) -> None:
    service = make_service()
    response = client_in.get(reverse("dashboard:service-charts", args=[service.name]), {"range": "30d"})
    assert response.status_code == 400
    assert response.json()["field"] == "range" and response.json()["errors"][0]["field"] == "range"
    assert "the ranges are 1h, 6h, 24h, 7d" in response.json()["detail"]
    body = client_in.get(reverse("dashboard:service", args=[service.name]), {"range": "30d"}).content.decode()
    assert "There is no range “30d” here: showing the last 6h." in body
    charts_url = reverse("dashboard:service-charts", args=[service.name])
    assert f'data-chart-url="{charts_url}?range=6h"' in body


def test_the_four_charts_share_one_time_axis_from_the_range_start_to_the_furthest_thing_drawn(
    client_in: Client,
) -> None:
    service = make_service(demand_scale=40.0)
    now = timezone.now()
    MetricSample.objects.create(service=service, ts=now - timedelta(minutes=30), rps=120.0)  # the rate chart only
    services.service_evaluate(service_id=service.pk, tick_at=services.align_tick(now))
    before = timezone.now()
    data = client_in.get(reverse("dashboard:service-charts", args=[service.name]) + "?range=1h").json()
    after = timezone.now()
    ranges = {name: tuple(figure["layout"]["xaxis"]["range"]) for name, figure in data["figures"].items()}
    assert len(set(ranges.values())) == 1, ranges  # the same axis on all four, though only one has the old rate
    # The axis is in the operator's wall-clock time (plotly.js converts no zones): read it back as such.
    start, end = (_operator_time(t) for t in ranges["rate"])
    assert before - timedelta(hours=1) <= start <= after - timedelta(hours=1)
    forecast = data["figures"]["rate"]["data"][1]["x"]
    assert forecast and end == max(_operator_time(t) for t in forecast) > now  # out to the forecast ahead


def _operator_time(wall_clock: str) -> datetime:
    return datetime.fromisoformat(wall_clock).replace(tzinfo=ZoneInfo(settings.OPERATOR_TIME_ZONE))


def test_the_charts_time_axis_is_the_operators_wall_clock_and_says_so(client_in: Client) -> None:
    service = make_service(demand_scale=40.0)
    at = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=10)  # a bucket's start
    MetricSample.objects.create(service=service, ts=at, rps=120.0, provisioned=3, ready=3)
    data = client_in.get(reverse("dashboard:service-charts", args=[service.name]) + "?range=1h").json()
    local = at.astimezone(ZoneInfo(settings.OPERATOR_TIME_ZONE)).replace(tzinfo=None)
    for name, figure in data["figures"].items():
        axis = figure["layout"]["xaxis"]
        assert axis["title"]["text"] == f"time ({settings.OPERATOR_TIME_ZONE})", name
        assert all(datetime.fromisoformat(t).tzinfo is None for t in axis["range"]), name  # no "Z", no offset
    assert data["figures"]["rate"]["data"][0]["x"] == [local.isoformat()]


# The first Sunday of November 2025 in New York: 06:00 UTC is 02:00 EDT, which the clocks set back to 01:00 EST.
EDT_0130, EST_0130 = datetime(2025, 11, 2, 5, 30, tzinfo=UTC), datetime(2025, 11, 2, 6, 30, tzinfo=UTC)


def test_the_repeated_hour_when_clocks_fall_back_draws_each_instant_at_its_own_place(
    client_in: Client, settings: Any
) -> None:
    settings.OPERATOR_TIME_ZONE = "America/New_York"
    service = make_service(demand_scale=40.0)
    for at in (EDT_0130, EST_0130):
        MetricSample.objects.create(service=service, ts=at, rps=120.0, provisioned=3, ready=3)
    with time_machine.travel(EST_0130 + timedelta(minutes=15), tick=False):
        data = client_in.get(reverse("dashboard:service-charts", args=[service.name]) + "?range=6h").json()
    rate = data["figures"]["rate"]["data"][0]
    # The two samples' points: the line breaks between them, an hour having no sample.
    first, second = (datetime.fromisoformat(x) for x, y in zip(rate["x"], rate["y"], strict=True) if y is not None)
    assert second - first == timedelta(hours=1)  # 01:30 EDT and 01:30 EST, an hour apart, not one point
    # Drawn on one clock, the one on the wall now, and the axis says which.
    assert second == datetime(2025, 11, 2, 1, 30)
    title = data["figures"]["rate"]["layout"]["xaxis"]["title"]["text"]
    assert "EST (UTC−5)" in title and "America/New_York" in title


def test_a_half_hour_zone_names_its_offset_to_the_minute() -> None:
    # Adelaide falls back from 03:00 ACDT (UTC+10:30) to 02:00 ACST (UTC+9:30) on 6 April 2025.
    change = datetime(2025, 4, 5, 16, 30, tzinfo=UTC)
    clock = chart_clock(ZoneInfo("Australia/Adelaide"), first=change - timedelta(hours=3), last=change, present=change)
    assert "ACST (UTC+9:30)" in clock.title and clock.offset == timedelta(hours=9, minutes=30)


def test_a_rate_from_before_tipoff_managed_the_service_has_no_cost_on_the_chart(client_in: Client) -> None:
    service = make_service(demand_scale=40.0)
    now = timezone.now()
    MetricSample.objects.create(service=service, ts=now - timedelta(minutes=30), rps=120.0)  # rate only
    services.service_evaluate(service_id=service.pk, tick_at=services.align_tick(now))
    data = client_in.get(reverse("dashboard:service-charts", args=[service.name]) + "?range=1h").json()
    cost = data["figures"]["cost"]["data"][0]["y"]
    provisioned = MetricSample.objects.filter(service=service).exclude(provisioned=None).get().provisioned
    assert provisioned is not None
    # The two samples are half an hour apart: the line breaks between them (a None midway), and the area under it
    # rises from 0 at the second.
    assert cost == [None, None, 0, pytest.approx(provisioned * service.price_per_replica_hour)]


def _recorded(service: Service, start: datetime, end: datetime) -> None:
    """A sample and a decision (forecasting 4 minutes ahead) every tick in [start, end), as a running worker leaves."""
    step = timedelta(seconds=settings.TICK_SECONDS)
    ticks = [start + step * k for k in range(int((end - start) / step))]
    MetricSample.objects.bulk_create(
        MetricSample(service=service, ts=t, rps=100.0, p50_ms=40.0, p95_ms=90.0, p99_ms=150.0, ready=4, provisioned=4)
        for t in ticks
    )
    forecast = {"rps": 110.0}
    Decision.objects.bulk_create(
        Decision(
            service=service,
            tick=t,
            provisioned=4,
            ready=4,
            desired=4,
            recommendation=4,
            reason_code="NO_CHANGE",
            summary="Held at 4",
            explanation={"forecast": {**forecast, "ts": (t + timedelta(minutes=4)).isoformat()}},
        )
        for t in ticks
    )


def test_every_line_of_the_service_charts_breaks_where_the_worker_stopped(client_in: Client) -> None:
    # Recorded for an hour, nothing for the next (the worker stopped), then recorded again to now.
    now = datetime(2026, 1, 15, 23, 30, tzinfo=UTC)
    service = make_service()
    _recorded(service, now - timedelta(hours=3), now - timedelta(hours=2))
    _recorded(service, now - timedelta(hours=1), now)
    with time_machine.travel(now, tick=False):
        figures = client_in.get(reverse("dashboard:service-charts", args=[service.name]) + "?range=6h").json()[
            "figures"
        ]
    # On 6 h the points are 30 s buckets; a value holds over two minutes of empty ones, as on the fleet's charts.
    longest = selectors.longest_joined(timedelta(seconds=30))
    lines = [trace for figure in figures.values() for trace in figure["data"] if trace["mode"] == "lines"]
    assert sorted(t["name"] for t in lines) == sorted(
        ["desired", "provisioned", "ready", "p50", "p95", "p99", "requests/s", "forecast", "$/hour"]
    )
    for trace in lines:
        points = [(datetime.fromisoformat(x), y) for x, y in zip(trace["x"], trace["y"], strict=True)]
        joined = [later - earlier for (earlier, a), (later, b) in pairwise(points) if a is not None and b is not None]
        assert max(joined) <= longest, f"{trace['name']} is drawn across the hour without data"
        assert None in trace["y"], trace["name"]
    # plotly fills under the cost line across its gap all the same: the area closes at 0 on either side.
    [cost] = figures["cost"]["data"]
    gap = cost["y"].index(None)
    assert cost["fill"] == "tozeroy" and (cost["y"][gap - 1], cost["y"][gap + 1]) == (0, 0)


def test_the_api_lists_services_for_a_logged_in_user(client_in: Client) -> None:
    make_service()
    assert [s["name"] for s in client_in.get("/api/services").json()] == ["win-probability"]


def _hold(service: Service, at: datetime) -> Decision:
    return Decision.objects.create(
        service=service,
        tick=at,
        provisioned=4,
        ready=4,
        desired=4,
        recommendation=4,
        reason_code="HOLD",
        summary="held",
    )


def test_the_changes_timeline_with_only_holds_says_how_many_ticks_held(client_in: Client) -> None:
    service = make_service()
    now = timezone.now()
    for i in range(21):
        _hold(service, now - timedelta(seconds=15 * i))
    url = reverse("dashboard:service", args=[service.name])
    for headers in ({}, {"HX-Request": "true"}):  # the page and its poll
        body = client_in.get(url + "?timeline=changes", headers=headers).content.decode()
        assert "No decisions yet" not in body
        assert "No changes or blocked changes in the last 6h; 21 ticks held." in body
    fresh = make_service("fresh")
    body = client_in.get(reverse("dashboard:service", args=[fresh.name]) + "?timeline=changes").content.decode()
    assert "No decisions yet: the first tick runs within" in body


def test_the_fleet_claims_nothing_about_the_slo_before_latency_or_errors_are_measured(client_in: Client) -> None:
    service = make_service(slo_latency_ms=300.0, slo_target=0.999)
    MetricSample.objects.create(service=service, ts=timezone.now(), rps=900.0, provisioned=4, ready=4)
    body = client_in.get(reverse("dashboard:fleet"), headers={"HX-Request": "true"}).content.decode()
    assert "Within SLO" not in body and 'data-badge="slo-no-data"' in body and "SLO: no data" in body


def test_the_timeline_and_the_fleet_give_times_in_the_operators_zone_with_utc_beside(client_in: Client) -> None:
    service = make_service()
    tick = datetime(2026, 1, 15, 23, 34, 5, tzinfo=ZoneInfo("UTC"))
    _hold(service, tick)
    with time_machine.travel(tick + timedelta(minutes=1), tick=False):  # the timeline lists the chosen range
        page = client_in.get(reverse("dashboard:service", args=[service.name])).content.decode()
    assert f'data-decision-id="{Decision.objects.get(service=service).pk}"' in page
    assert "Tick (UTC)" not in page
    assert f'<th title="in {settings.OPERATOR_TIME_ZONE}, UTC beside">Tick</th>' in page
    assert "2026-01-15 18:34:05 EST (23:34:05 UTC)" in page
    fleet = client_in.get(reverse("dashboard:fleet"), headers={"HX-Request": "true"}).content.decode()
    updated = fleet[fleet.index('data-testid="fleet-updated">') :]
    assert " UTC)</span>" in updated[:80] and (" EST " in updated[:80] or " EDT " in updated[:80])


def test_the_api_lists_decisions_and_metrics_within_the_limits_it_states(client_in: Client) -> None:
    from dashboard.api import RangeName
    from scaling import selectors

    service = make_service()
    now = timezone.now()
    for minutes in range(3):
        at = now - timedelta(minutes=minutes)
        Decision.objects.create(service=service, tick=at, provisioned=2, ready=2, desired=2, reason_code="NO_CHANGE")
        MetricSample.objects.create(service=service, ts=at - timedelta(hours=2), rps=1.0)
    base = f"/api/services/{service.name}"
    assert len(client_in.get(f"{base}/decisions", {"limit": 2}).json()) == 2
    # Out of range, or a range that is not one, is refused naming it: a clamp had answered limit=-5 with one row.
    for params in ({"limit": -5}, {"limit": 0}, {"limit": 501}):
        response = client_in.get(f"{base}/decisions", params)
        assert response.status_code == 422 and response.json()["field"] == "limit"
    assert len(client_in.get(f"{base}/metrics", {"range": "6h"}).json()) == 3
    assert client_in.get(f"{base}/metrics").json() == []  # 1 h by default
    # Newest first, as the decisions; a limit keeps the newest N and is refused out of bounds, naming it.
    newest = client_in.get(f"{base}/metrics", {"range": "6h", "limit": "2"}).json()
    assert [s["ts"] for s in newest] == sorted((s["ts"] for s in newest), reverse=True) and len(newest) == 2
    assert newest == client_in.get(f"{base}/metrics", {"range": "6h"}).json()[:2]
    for limit in ("0", "many", "50001"):
        response = client_in.get(f"{base}/metrics", {"range": "6h", "limit": limit})
        assert response.status_code == 422 and response.json()["field"] == "limit"
    response = client_in.get(f"{base}/metrics", {"range": "zzz"})
    assert response.status_code == 422 and response.json()["field"] == "range"
    assert set(get_args(RangeName)) == set(selectors.RANGES)  # the schema's ranges are the charts'
