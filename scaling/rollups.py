"""Metric rollups: each service's samples summed over fixed buckets, for the charts' long ranges.

A week of a 20-service fleet is 800,000 samples at a 15 s tick; the 7 d charts draw 672 points. Averaging
every sample on each poll costs time that grows with the fleet, so a beat task (`rollup_metrics`) sums each
service's samples over buckets of ROLLUP_S, and the charts whose bucket is a whole number of those read the
sums.

What a chart shows is the same either way (`chart_sums`):
- Sums and counts merge exactly: the mean of a chart bucket made of rollups is the mean of its samples, and
  the highest p95 the highest.
- A rollup is read only once no later run will compute it again (`settled_until`: LATE_MARGIN before the
  watermark).
  Everything after that (the buckets still open, those a late sample may still change, and all of them when
  the task has not run for a while) is read from the samples, as is a range's partial first bucket.
- A run computes, in one transaction, every bucket from LATE_MARGIN before the watermark to the last closed
  one, deleting and writing them again: running it twice changes nothing. A sample later than LATE_MARGIN
  past a bucket's end would be left out of its rollup; the metric sources deliver within minutes.
- Bulk writes of history (the demo's seeded week) recompute from their first sample (`since`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import BigIntegerField, Count, FloatField, Func, Max, Min, Q, QuerySet, Sum
from django.db.models.functions import Cast, Floor

from scaling.models import MetricRollup, MetricSample, RollupWatermark, Service

ROLLUP_S = 300
# A run computes again the buckets this far before its watermark: samples a source delivers late (CloudWatch's
# publication lag, a backfilled window) land in buckets already computed. A whole number of buckets (30 min).
LATE_MARGIN = timedelta(seconds=6 * ROLLUP_S)
# A chart range whose bucket would be this long or longer (12 h and over at 720 points) takes a whole number of
# rollups per bucket: 24 h is 288 points of 5 minutes, 7 d 672 of 15.
ROLLUP_FROM_BUCKET_S = 60


class EpochSeconds(Func):
    """An instant as seconds since 1970-01-01 UTC, on PostgreSQL and on SQLite (which stores UTC text).

    On SQLite from julianday (strftime's "%s" is taken for a query parameter), to the millisecond it keeps:
    its fraction of a day, unrounded, put 23:30:00 at 23:29:59.99999, in the bucket before its own."""

    arity = 1
    output_field = FloatField()
    template = "EXTRACT(EPOCH FROM %(expressions)s)"

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        template = "ROUND((julianday(%(expressions)s) - 2440587.5) * 86400.0, 3)"
        return self.as_sql(compiler, connection, template=template, **extra_context)


def chart_bucket_s(span: timedelta, *, max_points: int, tick_s: int) -> int:
    """The charts' bucket for a range: the range over max_points, never shorter than a tick; from a minute up,
    a whole number of rollups (so that it can be read from them)."""
    bucket_s = math.ceil(span.total_seconds() / max_points)
    if bucket_s >= ROLLUP_FROM_BUCKET_S:
        return math.ceil(bucket_s / ROLLUP_S) * ROLLUP_S
    return max(bucket_s, tick_s)


def bucket_number(field: str, seconds: int) -> Cast:
    """Which bucket of `seconds` from the epoch the instant `field` falls in, as an integer (PostgreSQL's epoch is
    numeric, which would come back as a Decimal per row)."""
    return Cast(Floor(EpochSeconds(field) / seconds), BigIntegerField())


def _floor(at: datetime, seconds: int) -> datetime:
    return datetime.fromtimestamp(int(at.timestamp() // seconds) * seconds, tz=UTC)


def _ceil(at: datetime, seconds: int) -> datetime:
    return datetime.fromtimestamp(math.ceil(at.timestamp() / seconds) * seconds, tz=UTC)


# --- Writing them --------------------------------------------------------------------------------------------

# A sample's sums, per (service, bucket): SQL aggregates named as MetricRollup's fields.
_SAMPLE_SUMS = {
    "samples": Count("pk"),
    "provisioned_sum": Sum("provisioned"),
    "provisioned_count": Count("provisioned"),
    "ready_sum": Sum("ready"),
    "ready_count": Count("ready"),
    "rps_sum": Sum("rps"),
    "rps_count": Count("rps"),
    "p50_ms_max": Max("p50_ms"),
    "p95_ms_max": Max("p95_ms"),
    "p99_ms_max": Max("p99_ms"),
}


@dataclass(frozen=True)
class RollupRun:
    start: datetime  # the buckets computed: [start, end), none when start is not before end
    end: datetime
    written: int


def rollups_refresh(*, now: datetime, since: datetime | None = None) -> RollupRun:
    """Compute every rollup from LATE_MARGIN before the watermark (or from `since`, if earlier: history written
    in bulk) to the last bucket closed at `now`, in one transaction.

    1. Lock the watermark row: runs take turns, and a reader sees the rollups and the watermark of one run.
    2. Delete the rollups of [start, end) and write them again from the samples, one grouped query.
    3. Move the watermark to `end` (never back: a run for an earlier `now` leaves later rollups as they are).
    """
    end = _floor(now, ROLLUP_S)
    with transaction.atomic():
        mark = RollupWatermark.objects.select_for_update().filter(pk=1).first()
        if mark is None:
            mark = RollupWatermark.objects.create(pk=1)
        if mark.rolled_until is not None:
            start = mark.rolled_until - LATE_MARGIN
        else:  # the first run: every sample there is
            first = MetricSample.objects.aggregate(first=Min("ts"))["first"]
            start = end if first is None else first
        if since is not None:
            start = min(start, since)
        start = _floor(start, ROLLUP_S)
        MetricRollup.objects.filter(bucket__gte=start, bucket__lt=end).delete()
        rows = (
            MetricSample.objects.filter(
                # Named, though it is every service: the samples' index leads with the service.
                service_id__in=list(Service.objects.values_list("pk", flat=True)),
                ts__gte=start,
                ts__lt=end,
            )
            .annotate(bucket_n=bucket_number("ts", ROLLUP_S))
            .values("service_id", "bucket_n")
            .annotate(**_SAMPLE_SUMS)
            .order_by()
        )
        written = MetricRollup.objects.bulk_create(
            (
                MetricRollup(
                    service_id=row.pop("service_id"),
                    bucket=datetime.fromtimestamp(int(row.pop("bucket_n")) * ROLLUP_S, tz=UTC),
                    **{k: (0 if v is None and k.endswith("_sum") else v) for k, v in row.items()},
                )
                for row in rows
            ),
            batch_size=2000,
        )
        if mark.rolled_until is None or mark.rolled_until < end:
            mark.rolled_until = end
        mark.save()
    return RollupRun(start, end, len(written))


def rollups_prune(*, before: datetime) -> int:
    """Delete the rollups of buckets wholly before `before` (the samples' retention cutoff)."""
    deleted, _ = MetricRollup.objects.filter(bucket__lte=before - timedelta(seconds=ROLLUP_S)).delete()
    return deleted


# --- Reading them ----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class BucketSums:
    """One service's samples in one chart bucket: sums and counts for the means, maxima for the latencies."""

    samples: int = 0
    provisioned_sum: int = 0
    provisioned_count: int = 0
    ready_sum: int = 0
    ready_count: int = 0
    rps_sum: float = 0.0
    rps_count: int = 0
    p50_ms_max: float | None = None
    p95_ms_max: float | None = None
    p99_ms_max: float | None = None

    def add(self, row: dict[str, Any]) -> None:
        self.samples += row["samples"]
        self.provisioned_sum += row["provisioned_sum"] or 0
        self.provisioned_count += row["provisioned_count"]
        self.ready_sum += row["ready_sum"] or 0
        self.ready_count += row["ready_count"]
        self.rps_sum += row["rps_sum"] or 0.0
        self.rps_count += row["rps_count"]
        self.p50_ms_max = _higher(self.p50_ms_max, row["p50_ms_max"])
        self.p95_ms_max = _higher(self.p95_ms_max, row["p95_ms_max"])
        self.p99_ms_max = _higher(self.p99_ms_max, row["p99_ms_max"])

    @property
    def provisioned(self) -> float | None:
        return self.provisioned_sum / self.provisioned_count if self.provisioned_count else None

    @property
    def ready(self) -> float | None:
        return self.ready_sum / self.ready_count if self.ready_count else None

    @property
    def rps(self) -> float | None:
        return self.rps_sum / self.rps_count if self.rps_count else None


def _higher(mine: float | None, theirs: float | None) -> float | None:
    if theirs is None:
        return mine
    return theirs if mine is None or theirs > mine else mine


def settled_until() -> datetime | None:
    """Rollups before this are final: no later run computes them again. None before the first run."""
    rolled = RollupWatermark.objects.filter(pk=1).values_list("rolled_until", flat=True).first()
    return None if rolled is None else rolled - LATE_MARGIN


def chart_sums(
    service_ids: list[int], *, since: datetime, until: datetime, bucket_s: int, use_rollups: bool = True
) -> dict[int, dict[int, BucketSums]]:
    """Each service's samples in [since, until] summed per chart bucket (numbered from the epoch in
    `bucket_s`), from the rollups where the bucket is a whole number of them and they are settled, and from
    the samples elsewhere: the same sums either way (`use_rollups=False` reads only samples)."""
    found: dict[int, dict[int, BucketSums]] = defaultdict(dict)

    def add(rows: QuerySet[Any]) -> None:
        # Thousands of rows of plain numbers: read from the cursor, without the ORM's per-row conversions (int()
        # and float() of what the casts and aggregates already return as int and float), a third of the time.
        sql, params = rows.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            names = [column[0] for column in cursor.description]
            for values in cursor.fetchall():
                row = dict(zip(names, values, strict=True))
                found[row["service_id"]].setdefault(row["chart_bucket"], BucketSums()).add(row)

    def sample_sums(start: datetime, end: datetime, *, end_inclusive: bool = False) -> Any:
        within = Q(ts__gte=start) & (Q(ts__lte=end) if end_inclusive else Q(ts__lt=end))
        return (
            MetricSample.objects.filter(within, service_id__in=service_ids)
            .annotate(chart_bucket=bucket_number("ts", bucket_s))
            .values("service_id", "chart_bucket")
            .annotate(**_SAMPLE_SUMS)
            .order_by()
        )

    settled = settled_until() if use_rollups and bucket_s % ROLLUP_S == 0 else None
    rolled_from, rolled_to = since, since
    if settled is not None:
        rolled_from, rolled_to = _ceil(since, ROLLUP_S), min(_floor(until, ROLLUP_S), settled)
    if rolled_from >= rolled_to:
        add(sample_sums(since, until, end_inclusive=True))
        return found
    add(
        MetricRollup.objects.filter(service_id__in=service_ids, bucket__gte=rolled_from, bucket__lt=rolled_to)
        .annotate(chart_bucket=bucket_number("bucket", bucket_s))
        .values("service_id", "chart_bucket")
        .annotate(
            samples=Sum("samples"),
            # Summed bigints are numeric on PostgreSQL: a Decimal per row without the cast.
            provisioned_sum=Cast(Sum("provisioned_sum"), BigIntegerField()),
            provisioned_count=Sum("provisioned_count"),
            ready_sum=Cast(Sum("ready_sum"), BigIntegerField()),
            ready_count=Sum("ready_count"),
            rps_sum=Sum("rps_sum"),
            rps_count=Sum("rps_count"),
            p50_ms_max=Max("p50_ms_max"),
            p95_ms_max=Max("p95_ms_max"),
            p99_ms_max=Max("p99_ms_max"),
        )
        .order_by()
    )
    # The samples before the first rollup and after the last, as two ranges in one query: one range with the
    # rollups' span excluded would walk the index over the whole week.
    add(sample_sums(since, rolled_from).union(sample_sums(rolled_to, until, end_inclusive=True), all=True))
    return found
