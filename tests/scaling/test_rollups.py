"""Metric rollups: the long chart ranges read them and show what the samples show, however late the task is."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from scaling import tasks
from scaling.audit import Actor
from scaling.models import MetricRollup, MetricSample, Service
from scaling.retention import history_prune
from scaling.rollups import LATE_MARGIN, ROLLUP_S, chart_bucket_s, rollups_refresh, settled_until
from scaling.selectors import fleet_timeseries, service_timeseries
from tests.factories import make_service

pytestmark = pytest.mark.django_db

# Weeks that hold a daylight-saving change in New York (the operators' zone): buckets are UTC, so nothing moves.
SPRING_FORWARD = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
FALL_BACK = datetime(2025, 11, 2, 6, 0, tzinfo=UTC)
WEEK, DAY = timedelta(days=7), timedelta(days=1)


@pytest.fixture(autouse=True)
def _ticks(settings: Any) -> None:
    settings.TICK_SECONDS = 60  # a week of a few services in a test's time


def _maybe(rng: random.Random, value: float) -> float | None:
    return None if rng.random() < 0.05 else value


def _history(rng: random.Random, services: list[Service], start: datetime, end: datetime) -> list[MetricSample]:
    """A sample about a tick apart per service (each at its own offset, jittered), with gaps of up to a few hours
    and values missing here and there."""
    rows = []
    for service in services:
        at = start + timedelta(seconds=rng.uniform(0, 60))
        while at < end:
            if rng.random() < 0.002:  # a gap: the source reported nothing
                at += timedelta(minutes=rng.uniform(5, 240))
                continue
            rows.append(_sample(rng, service, at))
            at += timedelta(seconds=rng.uniform(45, 75))
    return rows


def _sample(rng: random.Random, service: Service, at: datetime) -> MetricSample:
    provisioned = rng.randint(1, 40)
    return MetricSample(
        service=service,
        ts=at.replace(microsecond=at.microsecond // 1000 * 1000),  # SQLite keeps milliseconds
        provisioned=None if rng.random() < 0.05 else provisioned,
        ready=None if rng.random() < 0.05 else rng.randint(0, provisioned),
        rps=_maybe(rng, rng.uniform(0, 5000)),
        p50_ms=_maybe(rng, rng.uniform(5, 50)),
        p95_ms=_maybe(rng, rng.uniform(50, 400)),
        p99_ms=_maybe(rng, rng.uniform(400, 900)),
    )


def _same(mine: list[float | None], theirs: list[float | None]) -> bool:
    """Equal but for the last bits of a float: a sum of sums adds in another order than the sum of samples."""
    return len(mine) == len(theirs) and all(
        a == b if a is None or b is None else a == pytest.approx(b, rel=1e-9) for a, b in zip(mine, theirs, strict=True)
    )


def _assert_same_fleet(now: datetime, span: timedelta) -> None:
    rolled = fleet_timeseries(since=now - span, until=now)
    raw = fleet_timeseries(since=now - span, until=now, use_rollups=False)
    assert rolled.ts == raw.ts and rolled.bucket == raw.bucket
    assert [s.service.pk for s in rolled.services] == [s.service.pk for s in raw.services]
    for mine, theirs in zip(rolled.services, raw.services, strict=True):
        for key in ("provisioned", "ready", "rps", "p95_ms"):
            assert _same(getattr(mine, key), getattr(theirs, key)), (mine.service.name, key)
    assert rolled.total_cost == pytest.approx(raw.total_cost, rel=1e-9)


def _assert_same_service(service: Service, now: datetime, span: timedelta) -> None:
    rolled = service_timeseries(service, since=now - span, until=now)
    raw = service_timeseries(service, since=now - span, until=now, use_rollups=False)
    assert rolled["ts"] == raw["ts"]
    # Numbers the charts' JSON writes as numbers (a Decimal, as PostgreSQL sums bigints, would be a string).
    assert {type(v) for v in rolled["provisioned"] + rolled["rps"] + rolled["p95_ms"]} <= {float, type(None)}
    for key in ("provisioned", "ready", "rps", "p50_ms", "p95_ms", "p99_ms", "cost_per_hour"):
        assert _same(rolled[key], raw[key]), (service.name, key)


def _assert_same(services: list[Service], now: datetime) -> None:
    for span in (WEEK, DAY):
        _assert_same_fleet(now, span)
        for service in services:
            _assert_same_service(service, now, span)


@pytest.mark.parametrize("seed", range(6))
def test_the_long_ranges_read_from_rollups_show_what_the_samples_show(seed: int) -> None:
    """Generated weeks (gaps, missing values, a DST change, several services, a range that starts mid-bucket);
    the task run every few minutes and then not for a while, late samples landing in buckets already rolled up:
    at every step the 7 d and 24 h charts are those computed from the samples alone."""
    rng = random.Random(seed)
    services = [make_service(f"svc-{i}") for i in range(rng.randint(2, 4))]
    around = SPRING_FORWARD if seed % 2 else FALL_BACK
    now = around + timedelta(days=rng.uniform(1, 3), seconds=rng.uniform(0, 3600))
    MetricSample.objects.bulk_create(_history(rng, services, now - WEEK - DAY, now), batch_size=2000)
    rollups_refresh(now=now)
    assert settled_until() is not None and MetricRollup.objects.exists()
    _assert_same(services, now)
    _assert_same_fleet(now - timedelta(hours=30, seconds=17), WEEK)  # a range that ends before the rollups do

    # The task keeps running every five minutes, with samples arriving late into buckets it has rolled up.
    for _ in range(3):
        later = now + timedelta(minutes=5)
        fresh = _history(rng, services, now, later)
        late = [_sample(rng, rng.choice(services), now - timedelta(seconds=rng.uniform(1, 1500))) for _ in range(5)]
        MetricSample.objects.bulk_create([*fresh, *late], ignore_conflicts=True)
        _assert_same(services, later)  # before the task has seen them
        now = later
        rollups_refresh(now=now)
        _assert_same(services, now)

    # Then the task stops for an hour and a half: the charts still have every sample, from the samples.
    later = now + timedelta(minutes=90)
    MetricSample.objects.bulk_create(_history(rng, services, now, later), batch_size=2000)
    _assert_same(services, later)


def test_the_long_ranges_read_the_rollups_not_the_samples() -> None:
    """Were a rollup wrong, the 7 d chart would show it: the settled buckets come from the rollups alone."""
    service = make_service("live-odds")
    now = datetime(2026, 1, 20, 12, 0, 30, tzinfo=UTC)
    MetricSample.objects.bulk_create(
        MetricSample(service=service, ts=now - timedelta(minutes=m), provisioned=4, rps=100.0) for m in range(1, 600)
    )
    rollups_refresh(now=now)
    MetricRollup.objects.update(provisioned_sum=0, rps_sum=0.0)
    with CaptureQueriesContext(connection) as queries:
        [series] = fleet_timeseries(since=now - WEEK, until=now).services
    read = " ".join(q["sql"] for q in queries.captured_queries)
    assert MetricRollup._meta.db_table in read
    settled = settled_until()
    assert settled is not None and settled == now.replace(second=0) - LATE_MARGIN
    values = [v for v in series.provisioned if v is not None]
    assert 0.0 in values  # what the (spoiled) rollups say
    assert values[-3:] == [4.0, 4.0, 4.0]  # the last 45 minutes, not settled: from the samples
    # The short ranges' buckets are finer than a rollup: always from the samples.
    [six_hours] = fleet_timeseries(since=now - timedelta(hours=6), until=now).services
    assert set(six_hours.provisioned) <= {4.0, None}


def test_the_chart_buckets_of_the_long_ranges_are_whole_rollups() -> None:
    buckets = {
        name: chart_bucket_s(span, max_points=720, tick_s=15)
        for name, span in {"1h": timedelta(hours=1), "6h": timedelta(hours=6), "24h": DAY, "7d": WEEK}.items()
    }
    assert buckets == {"1h": 15, "6h": 30, "24h": ROLLUP_S, "7d": 3 * ROLLUP_S}


def _rollup_rows() -> list[tuple[Any, ...]]:
    fields = [f.name for f in MetricRollup._meta.get_fields() if f.name != "id"]
    return sorted(MetricRollup.objects.values_list(*fields))


def test_running_it_again_changes_nothing() -> None:
    rng = random.Random(7)
    services = [make_service("live-odds"), make_service("player-props")]
    now = datetime(2026, 1, 20, 12, 2, tzinfo=UTC)
    MetricSample.objects.bulk_create(_history(rng, services, now - DAY, now - timedelta(minutes=2)))
    first = rollups_refresh(now=now)
    rows = _rollup_rows()
    assert first.written == len(rows) > 0 and first.end == datetime(2026, 1, 20, 12, 0, tzinfo=UTC)
    again = rollups_refresh(now=now)
    assert again.start == first.end - LATE_MARGIN  # the margin's buckets, computed again
    assert _rollup_rows() == rows
    rollups_refresh(now=now + timedelta(minutes=20))  # later, with no new samples: the same buckets
    assert _rollup_rows() == rows


def test_a_late_sample_is_in_its_bucket_after_the_next_run() -> None:
    service = make_service("live-odds")
    now = datetime(2026, 1, 20, 12, 0, tzinfo=UTC)
    MetricSample.objects.create(service=service, ts=now - timedelta(minutes=20), provisioned=2)
    rollups_refresh(now=now)
    MetricSample.objects.create(service=service, ts=now - timedelta(minutes=19), provisioned=4)  # arrived late
    rollups_refresh(now=now + timedelta(minutes=5))
    [rollup] = MetricRollup.objects.all()
    assert (rollup.bucket, rollup.samples, rollup.provisioned_sum) == (now - timedelta(minutes=20), 2, 6)


def test_history_written_in_bulk_before_the_watermark_is_rolled_up_from_since() -> None:
    service = make_service("live-odds")
    now = datetime(2026, 1, 20, 12, 0, tzinfo=UTC)
    rollups_refresh(now=now)
    MetricSample.objects.create(service=service, ts=now - timedelta(days=3), provisioned=2)  # an import's
    rollups_refresh(now=now)
    assert not MetricRollup.objects.exists()  # before the margin: only a run told where it starts sees it
    rollups_refresh(now=now, since=now - timedelta(days=3))
    assert MetricRollup.objects.get().bucket == now - timedelta(days=3)


def test_the_task_rolls_up_every_five_minutes() -> None:
    service = make_service("live-odds")
    MetricSample.objects.create(service=service, ts=datetime(2026, 1, 20, 12, 0, tzinfo=UTC), provisioned=2)
    assert tasks.rollup_metrics() == 1
    assert tasks.beat_schedule()["rollup_metrics"]["schedule"] == ROLLUP_S


def test_the_prune_deletes_the_rollups_of_the_samples_it_deletes(settings: Any) -> None:
    service = make_service("live-odds")
    now = datetime(2026, 6, 1, 12, 2, tzinfo=UTC)
    cutoff = now - timedelta(days=settings.METRIC_RETENTION_DAYS)  # 12:02, two minutes into a bucket
    for at in (cutoff - timedelta(minutes=10), cutoff - timedelta(minutes=2), cutoff + timedelta(minutes=10)):
        MetricSample.objects.create(service=service, ts=at, provisioned=2)
    rollups_refresh(now=now)
    assert MetricRollup.objects.count() == 3
    history_prune(actor=Actor.system("prune_history"), now=now)
    # The bucket wholly before the cutoff goes; the one the cutoff falls in, and later ones, stay.
    assert sorted(MetricRollup.objects.values_list("bucket", flat=True)) == [
        cutoff - timedelta(minutes=2),
        cutoff + timedelta(minutes=8),
    ]
