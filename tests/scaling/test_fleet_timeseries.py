"""The fleet charts' series: every service's samples on common buckets, read in a couple of queries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from scaling.models import MetricSample, Service
from scaling.rollups import rollups_refresh
from scaling.selectors import fleet_timeseries
from tests.factories import T0, make_service

pytestmark = pytest.mark.django_db

SIX_HOURS = timedelta(hours=6)  # over 720 points: 30-second buckets


@pytest.fixture(autouse=True)
def _ticks(settings: Any) -> None:
    settings.TICK_SECONDS = 15


def _sample(service: Service, seconds: float, **values: Any) -> None:
    MetricSample.objects.create(service=service, ts=T0 + timedelta(seconds=seconds), **values)


def _at(fleet: Any, seconds: int) -> int:
    """The index of the bucket holding T0 + seconds."""
    return fleet.ts.index(T0 + timedelta(seconds=seconds - seconds % int(fleet.bucket.total_seconds())))


def test_services_sampled_at_different_instants_share_the_fleets_buckets() -> None:
    odds, props = make_service("live-odds"), make_service("player-props")
    for seconds, n in ((0, 3), (30, 4), (60, 5)):
        _sample(odds, seconds, provisioned=n)
        _sample(props, seconds + 17, provisioned=10 * n)  # 17 s later each time: never at the same instant
    fleet = fleet_timeseries(since=T0 - SIX_HOURS + timedelta(seconds=90), until=T0 + timedelta(seconds=90))
    assert fleet.bucket == timedelta(seconds=30)
    assert fleet.ts == [T0 + timedelta(seconds=s) for s in (0, 30, 60, 90)]  # from the first sample to `until`
    by_name = {s.service.name: s.provisioned for s in fleet.services}
    # Side by side in each bucket; the last, which neither has reported in yet, holds each one's latest.
    assert by_name == {"live-odds": [3, 4, 5, 5], "player-props": [30, 40, 50, 50]}


def test_the_fleet_totals_are_each_buckets_sums_over_the_services_reporting_there() -> None:
    odds = make_service("live-odds", price_per_replica_hour=0.5)
    props = make_service("player-props", price_per_replica_hour=2.0)
    _sample(odds, 0, provisioned=2, ready=2, rps=100.0)
    _sample(odds, 10, provisioned=4, ready=3, rps=200.0)  # the same bucket: the mean of the two
    for seconds in (0, 300, 600):  # every five minutes: beyond the hold over the buckets in between
        _sample(props, seconds, provisioned=6, ready=5, rps=40.0)
    fleet = fleet_timeseries(since=T0, until=T0 + timedelta(seconds=600))
    assert fleet.bucket == timedelta(seconds=15)  # never shorter than a tick
    now, props_only = _at(fleet, 0), _at(fleet, 300)
    assert fleet.total_provisioned[now] == 3 + 6 and fleet.total_ready[now] == 2.5 + 5
    assert fleet.total_rps[now] == 150.0 + 40.0
    assert fleet.total_cost_per_hour[now] == 3 * 0.5 + 6 * 2.0
    assert fleet.total_provisioned[props_only] == 6  # odds stopped reporting long before: only props there
    assert fleet.total_provisioned[props_only - 1] is None  # nobody reported within the hold


def test_a_service_that_stops_reporting_leaves_the_stack_after_two_minutes() -> None:
    odds = make_service("live-odds")
    _sample(odds, 0, provisioned=4)
    fleet = fleet_timeseries(since=T0, until=T0 + timedelta(minutes=5))
    [series] = fleet.services
    # Its own bucket, then eight more of 15 s held: two minutes; then nothing to `until`.
    assert series.provisioned == [4] * 9 + [None] * 12


def test_each_p95_is_a_share_of_its_own_services_limit() -> None:
    odds = make_service("live-odds", slo_latency_ms=200.0)
    summaries = make_service("game-summaries", slo_latency_ms=2000.0)
    _sample(odds, 0, p95_ms=100.0)
    _sample(odds, 10, p95_ms=180.0)  # the highest in the bucket counts: a breach within one stays visible
    _sample(summaries, 5, p95_ms=1800.0)
    fleet = fleet_timeseries(since=T0, until=T0 + timedelta(seconds=20))
    shares = {s.service.name: (s.p95_ms[0], s.p95_share_of_limit[0]) for s in fleet.services}
    assert shares == {"live-odds": (180.0, pytest.approx(0.9)), "game-summaries": (1800.0, pytest.approx(0.9))}


def test_the_ranges_cost_counts_each_bucket_for_its_part_inside_the_range() -> None:
    odds = make_service("live-odds", price_per_replica_hour=1.5)
    props = make_service("player-props", price_per_replica_hour=3.0)
    start = T0 + timedelta(seconds=10)  # two thirds of the way into a 15-second bucket
    for seconds in range(10, 3600, 30):
        _sample(odds, seconds, provisioned=2)
        _sample(props, seconds + 2, provisioned=1)
    fleet = fleet_timeseries(since=start, until=start + timedelta(hours=1))
    assert fleet.ts[0] < start and fleet.ts[-1] + fleet.bucket > start + timedelta(hours=1)
    assert fleet.total_cost == pytest.approx(2 * 1.5 + 1 * 3.0)  # an hour of $6/hour, not a bucket more


def test_a_service_whose_samples_stopped_is_costed_only_over_the_time_it_has_them() -> None:
    odds = make_service("live-odds", price_per_replica_hour=1.5)
    props = make_service("player-props", price_per_replica_hour=3.0)
    for seconds in range(0, 3600, 15):
        _sample(odds, seconds, provisioned=2)
        if seconds < 42 * 60:  # its samples stop 18 minutes before the end
            _sample(props, seconds, provisioned=1)
    fleet = fleet_timeseries(since=T0, until=T0 + timedelta(hours=1))
    odds_cost, props_cost = fleet.service_costs
    assert (odds_cost.observed, odds_cost.partial) == (timedelta(hours=1), False)
    assert odds_cost.dollars == pytest.approx(2 * 1.5)
    # 42 minutes of samples and the two minutes its last count is held for, as drawn: no dollars for the rest,
    # and said to be so rather than read as a cheaper hour.
    assert (props_cost.observed, props_cost.partial) == (timedelta(minutes=44), True)
    assert props_cost.dollars == pytest.approx(1 * 3.0 * 44 / 60)
    assert fleet.total_cost == pytest.approx(odds_cost.dollars + props_cost.dollars)


def test_a_source_reporting_once_a_minute_covers_the_whole_range() -> None:
    odds = make_service("live-odds", price_per_replica_hour=1.5)
    for seconds in range(50, 3600, 60):  # its first report 50 s into the range
        _sample(odds, seconds, provisioned=2)
    [cost] = fleet_timeseries(since=T0, until=T0 + timedelta(hours=1)).service_costs
    assert cost.observed == timedelta(minutes=59, seconds=15) and not cost.partial


def test_an_empty_fleet_has_no_buckets() -> None:
    make_service("live-odds")
    _sample(make_service("player-props"), -3600, provisioned=3)  # before the range
    fleet = fleet_timeseries(since=T0, until=T0 + SIX_HOURS)
    assert fleet.services == [] and fleet.ts == [] and fleet.total_cost == 0.0


def test_a_week_of_the_fleet_costs_the_same_queries_for_2_or_20_services() -> None:
    def read_with(n: int, start: int) -> int:
        for i in range(start, start + n):
            service = make_service(f"svc-{i}")
            MetricSample.objects.bulk_create(
                MetricSample(service=service, ts=T0 - timedelta(hours=h, seconds=i), provisioned=i) for h in range(168)
            )
        rollups_refresh(now=T0)
        with CaptureQueriesContext(connection) as queries:
            fleet = fleet_timeseries(since=T0 - timedelta(days=7), until=T0)
        assert len(fleet.services) == start + n
        return len(queries)

    # The services, the rollups' watermark, the rollups, the samples not rolled up yet.
    assert read_with(2, 0) == read_with(18, 2) == 4
