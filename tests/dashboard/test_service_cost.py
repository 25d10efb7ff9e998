"""The service page's cost over the last 24 h: the area under its 24 h cost chart, from the same rollups and
samples, over the time with samples only."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from scaling.models import MetricSample, Service
from scaling.rollups import rollups_refresh
from scaling.selectors import service_cost
from tests.factories import T0, make_service

pytestmark = pytest.mark.django_db

DAY = timedelta(hours=24)
GAP = (T0 - timedelta(hours=10), T0 - timedelta(hours=7))  # no samples: the metric source was down


def _a_day_with_a_gap(service: Service) -> None:
    """A sample a minute over the last 26 h, 3 to 6 replicas in turn (so no two buckets' means are alike by
    chance), none in GAP; rolled up until an hour ago, so the newest hour and a half is read from the samples."""
    MetricSample.objects.bulk_create(
        MetricSample(service=service, ts=at, provisioned=3 + minute % 4, ready=3)
        for minute in range(26 * 60 + 1)
        if not GAP[0] <= (at := T0 - timedelta(minutes=minute)) < GAP[1]
    )
    rollups_refresh(now=T0 - timedelta(hours=1))


def _area_under(cost: dict[str, Any], *, since: datetime, until: datetime) -> float:
    """Dollars under the chart's cost line, read from its JSON: 5-minute buckets at wall-clock times."""
    [line] = cost["data"]
    bucket, total = timedelta(minutes=5), 0.0
    for x, per_hour in zip(line["x"], line["y"], strict=True):
        start = datetime.fromisoformat(x).replace(tzinfo=ZoneInfo(settings.OPERATOR_TIME_ZONE))
        inside = min(start + bucket, until) - max(start, since)
        if per_hour is not None and inside > timedelta(0):
            total += per_hour * inside.total_seconds() / 3600
    return total


def test_the_24h_cost_is_the_area_under_the_24h_cost_chart_and_says_what_it_covers(viewer: Client) -> None:
    service = make_service(price_per_replica_hour=2.0)
    _a_day_with_a_gap(service)
    with time_machine.travel(T0, tick=False):
        page = viewer.get(reverse("dashboard:service", args=[service.name])).content.decode()
        charts = viewer.get(reverse("dashboard:service-charts", args=[service.name]) + "?range=24h").json()
    chart_dollars = _area_under(charts["figures"]["cost"], since=T0 - DAY, until=T0)
    said = re.search(r'data-testid="cost-24h">([^<]*)<', page)
    assert said is not None
    # The gap counts for nothing, and the page says so, rather than as $0 or at the count before it.
    assert said[1] == f"cost ${chart_dollars:,.2f} over the 21 h with samples in the last 24 h"
    assert chart_dollars == pytest.approx(2.0 * 4.5 * 21, rel=0.01)  # 4.5 replicas on average


def test_a_whole_day_of_samples_is_the_24h_cost() -> None:
    service = make_service(price_per_replica_hour=2.0)
    MetricSample.objects.bulk_create(
        MetricSample(service=service, ts=T0 - timedelta(minutes=m), provisioned=4) for m in range(24 * 60 + 1)
    )
    cost = service_cost(service, since=T0 - DAY, until=T0)
    assert cost.dollars == pytest.approx(2.0 * 4 * 24) and cost.observed == DAY and not cost.partial


def test_the_24h_cost_reads_the_settled_rollups_and_the_samples_after_them_as_the_chart_does() -> None:
    service = make_service(price_per_replica_hour=2.0)
    _a_day_with_a_gap(service)
    with CaptureQueriesContext(connection) as queries:
        rolled = service_cost(service, since=T0 - DAY, until=T0)
    assert any("scaling_metricrollup" in q["sql"] for q in queries)
    raw = service_cost(service, since=T0 - DAY, until=T0, use_rollups=False)
    assert (rolled.dollars, rolled.observed) == (pytest.approx(raw.dollars, rel=1e-9), raw.observed)
