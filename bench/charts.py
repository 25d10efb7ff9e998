"""How long the 7 d and 24 h chart selectors take, from every sample and from the rollups, in one run.

    .venv/bin/python bench/charts.py [--database-url URL] [--services 20] [--days 7] [--runs 7]

Seeds a scratch database (Django's test database beside DATABASE_URL's, created here and dropped at the end:
`test_<name>` on PostgreSQL, a file under a temporary directory for SQLite) with one sample per service per
tick (TICK_SECONDS, 15 s by default) for the days asked, rolls them up as the beat task does, then times
`fleet_timeseries` and `service_timeseries` over 7 d and 24 h both ways, alternating, and checks that both
draw the same values. Then gives one service a decision a tick, each with an explanation of the size the engine
writes, and times the service chart's decision reads (its replicas asked for, markers and forecast) as they were,
every decision in range, against one decision a chart bucket. Writes bench/CHARTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from policies import cpu_model  # noqa: E402  (bench/, beside this script)

NOW = datetime(2026, 1, 20, 3, 7, 41, tzinfo=UTC)  # a game night's end, a few minutes into a rollup bucket


def _setup(database_url: str | None) -> str:
    """Django, on a scratch database made for this run; returns its description."""
    scratch = tempfile.mkdtemp(prefix="tipoff-bench-charts-")
    os.environ.setdefault("TIPOFF_ALLOW_INSECURE_SECRET", "1")
    os.environ["TIPOFF_VAR_DIR"] = scratch
    os.environ["DATABASE_URL"] = database_url or f"sqlite:///{scratch}/charts.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.db import connection

    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False, keepdb=False)
    with connection.cursor() as cursor:
        cursor.execute("SELECT sqlite_version()" if connection.vendor == "sqlite" else "SHOW server_version")
        version = str(cursor.fetchone()[0]).split()[0]
    name = "a file in a temporary directory" if connection.vendor == "sqlite" else connection.settings_dict["NAME"]
    return f"{connection.display_name} {version} (scratch database: {name})"


def _seed(services: int, days: int) -> tuple[int, float]:
    """One sample per service per tick, each service at its own offset within the tick; returns (count, s)."""
    from django.conf import settings

    from scaling.models import MetricSample, Service

    began = time.perf_counter()
    rng = random.Random(1)
    tick = timedelta(seconds=settings.TICK_SECONDS)
    start = NOW - timedelta(days=days, hours=1)
    count = 0
    for i in range(services):
        service = Service.objects.create(name=f"svc-{i:02d}", display_name=f"Service {i}", price_per_replica_hour=1.5)
        at, rows = start + timedelta(seconds=rng.uniform(0, tick.total_seconds())), []
        while at < NOW:
            provisioned = rng.randint(2, 40)
            p50 = rng.uniform(10, 60)
            rows.append(
                MetricSample(
                    service=service,
                    ts=at,
                    rps=rng.uniform(50, 4000),
                    p50_ms=p50,
                    p95_ms=p50 * rng.uniform(2, 4),
                    p99_ms=p50 * rng.uniform(4, 8),
                    provisioned=provisioned,
                    ready=rng.randint(1, provisioned),
                )
            )
            at += tick
        MetricSample.objects.bulk_create(rows, batch_size=5000)
        count += len(rows)
    return count, time.perf_counter() - began


# A decision's explanation as the engine writes it (1.5 kB of JSON): a hold while pre-warming, with its forecast.
EXPLANATION: dict[str, Any] = {
    "desired": 5,
    "current": 5,
    "recommendation": 5,
    "reason": "NO_CHANGE",
    "summary": "Held at 5: already at the count the policy asks for (pre-warming for LAL @ BOS (ABC) at 19:30 ET; "
    "forecast 812 rps at 19:14 ET + 31 % headroom)",
    "rules": [
        {
            "rule": rule,
            "recommendation": 5,
            "inputs": {"observed": 0.61, "target": 0.7, "current": 5, "window_s": 60, "detail": "x" * 180},
        }
        for rule in ("target_utilization", "slo_guard", "panic", "forecast")
    ],
    "constraints": [{"name": "scale_in_stabilization", "before": 4, "after": 5, "detail": "x" * 120}],
    "forecast": {"ts": "", "rps": 0.0, "replicas": 5, "predicted_rps": 800.0, "ratio": 1.01, "learned": True},
    "policy_version": 3,
}


def _seed_decisions(service: Any, days: int) -> int:
    """One decision a tick for `service`, 2 % of them changes, each with EXPLANATION's forecast 4 minutes on."""
    from django.conf import settings

    from scaling.models import Decision

    rng = random.Random(2)
    at, rows = NOW - timedelta(days=days, hours=1), []
    while at < NOW:
        changed = rng.random() < 0.02
        ahead = (at + timedelta(minutes=4)).isoformat()
        forecast = EXPLANATION["forecast"] | {"ts": ahead, "rps": rng.uniform(50, 900)}
        rows.append(
            Decision(
                service=service,
                tick=at,
                provisioned=5,
                ready=5,
                desired=6 if changed else 5,
                recommendation=6 if changed else 5,
                changed=changed,
                reason_code="SCALED_OUT" if changed else "NO_CHANGE",
                summary=EXPLANATION["summary"],
                explanation=EXPLANATION | {"forecast": forecast},
            )
        )
        at += timedelta(seconds=settings.TICK_SECONDS)
    Decision.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def _every_decision(service: Any, since: datetime) -> tuple[int, int]:
    """The service chart's decision reads until 28 Nov 2026: every decision in range, and every one's forecast."""
    from django.db.models.fields.json import KT

    from scaling.models import Decision

    decisions = list(
        Decision.objects.filter(service=service, tick__gte=since)
        .order_by("tick")
        .values("id", "tick", "desired", "changed", "summary")
    )
    forecasts = list(
        Decision.objects.filter(service=service, tick__gte=since, explanation__forecast__rps__isnull=False)
        .order_by("tick")
        .values_list("tick", KT("explanation__forecast__ts"), KT("explanation__forecast__rps"))
    )
    return len(decisions), len(forecasts)


def _timed_ms(call: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = call()
    return (time.perf_counter() - began) * 1000, result


def _medians_ms(call: Callable[[bool], Any], runs: int) -> tuple[float, Any, float, Any]:
    """Median ms of `call(False)` (every sample) and `call(True)` (rollups), alternating, and their results."""
    raw_ms, rolled_ms, raw, rolled = [], [], None, None
    for _ in range(runs):
        ms, raw = _timed_ms(lambda: call(False))
        raw_ms.append(ms)
        ms, rolled = _timed_ms(lambda: call(True))
        rolled_ms.append(ms)
    return statistics.median(raw_ms), raw, statistics.median(rolled_ms), rolled


def _same(a: list[float | None], b: list[float | None]) -> bool:
    return len(a) == len(b) and all(
        x == y if x is None or y is None else abs(x - y) <= 1e-9 * max(abs(x), abs(y), 1.0)
        for x, y in zip(a, b, strict=True)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="where to make the scratch database (default: SQLite in a temp dir)")
    parser.add_argument("--services", type=int, default=20)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--runs", type=int, default=7, help="timed calls of each selector each way (the median)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "CHARTS.md"))
    args = parser.parse_args()

    load_before = os.getloadavg()
    database = _setup(args.database_url)
    from django.conf import settings
    from django.db import connection

    from scaling.models import MetricRollup, Service
    from scaling.rollups import chart_bucket_s, rollups_refresh
    from scaling.selectors import decision_series, fleet_timeseries, forecast_series, service_timeseries

    try:
        samples, seed_s = _seed(args.services, args.days)
        began = time.perf_counter()
        rollups_refresh(now=NOW)
        backfill_s = time.perf_counter() - began
        rollups = MetricRollup.objects.count()
        began = time.perf_counter()
        rollups_refresh(now=NOW + timedelta(minutes=5))  # a beat run: the last half hour and the new bucket
        steady_ms = (time.perf_counter() - began) * 1000
        # As autovacuum leaves a table that has been written for a week: its statistics and visibility map current.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
        service = Service.objects.order_by("name").first()
        assert service is not None
        at = NOW + timedelta(minutes=5)

        rows = []
        for label, span in (("7 d", timedelta(days=7)), ("24 h", timedelta(hours=24))):
            since = at - span

            def fleet(use: bool, since: datetime = since) -> Any:
                return fleet_timeseries(since=since, until=at, use_rollups=use)

            def one(use: bool, since: datetime = since) -> Any:
                return service_timeseries(service, since=since, until=at, use_rollups=use)

            for name, call in (("fleet_timeseries", fleet), (f"service_timeseries ({service.name})", one)):
                call(True), call(False)  # warm: the first call of each pays for the cache, not the query
                raw_ms, raw, rolled_ms, rolled = _medians_ms(call, args.runs)
                if name == "fleet_timeseries":
                    points = len(rolled.ts)
                    same = rolled.ts == raw.ts and all(
                        _same(getattr(m, k), getattr(r, k))
                        for m, r in zip(rolled.services, raw.services, strict=True)
                        for k in ("provisioned", "ready", "rps", "p95_ms")
                    )
                else:
                    points = len(rolled["ts"])
                    same = rolled["ts"] == raw["ts"] and all(
                        _same(rolled[k], raw[k]) for k in ("provisioned", "ready", "rps", "p50_ms", "p95_ms", "p99_ms")
                    )
                if not same:
                    raise SystemExit(f"{label} {name}: the rollups drew other values than the samples")
                rows.append((label, name, points, raw_ms, rolled_ms))
                ratio = raw_ms / rolled_ms
                print(f"{label:>5} {name:<36} raw {raw_ms:8.1f} ms  rollups {rolled_ms:7.1f} ms  ×{ratio:.1f}")

        decisions = _seed_decisions(service, args.days)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
        decision_rows = []
        for label, span in (("7 d", timedelta(days=7)), ("24 h", timedelta(hours=24))):
            since = at - span
            bucket_s = chart_bucket_s(span, max_points=720, tick_s=settings.TICK_SECONDS)

            def reads(per_bucket: bool, since: datetime = since, bucket_s: int = bucket_s) -> Any:
                if not per_bucket:
                    return _every_decision(service, since)
                drawn = decision_series(service, since=since, until=at, bucket_s=bucket_s)
                return drawn, forecast_series(service, since=since, until=at)

            reads(True), reads(False)
            every_ms, every, bucketed_ms, (drawn, forecast) = _medians_ms(reads, args.runs)
            decision_rows.append((label, every[0], len(drawn["desired"]), len(forecast["ts"]), every_ms, bucketed_ms))
            print(f"{label:>5} decisions  every {every_ms:8.1f} ms  per bucket {bucketed_ms:7.1f} ms")
        load_after = os.getloadavg()
    finally:
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0, keepdb=False)
        shutil.rmtree(os.environ["TIPOFF_VAR_DIR"], ignore_errors=True)

    import django

    where = f" --database-url {_scrub(args.database_url)}" if args.database_url else ""
    lines = [
        "# Chart selectors: every sample vs rollups",
        "",
        f"`.venv/bin/python bench/charts.py{where} --services {args.services} --days {args.days} --runs {args.runs}`"
        f" — {args.services} services, one sample per "
        f"service per {settings.TICK_SECONDS} s tick for {args.days} days and an hour ({samples:,} samples, "
        f"seeded in {seed_s:.0f} s) in a scratch database, rolled up into {rollups:,} rollups of 5 minutes "
        f"(the first run, over all of them: {backfill_s:.1f} s; a beat run five minutes later, which computes "
        f"the last half hour again and the new bucket: {steady_ms:.0f} ms), then `VACUUM ANALYZE` (`ANALYZE` on "
        "SQLite), as autovacuum keeps a table written for a week. Each selector is called "
        f"{args.runs} times each way after one warm-up call, alternating raw and rollups; the median is shown. "
        "Both ways drew the same values (to 1e-9) in this run.",
        "",
        "Rollups: the closed buckets up to half an hour before the watermark from `scaling_metricrollup`, "
        "the rest of the range (its partial first bucket, the last ~35 minutes) from the samples.",
        "",
        "| range | selector | points | every sample | rollups | ratio |",
        "|---|---|---|---|---|---|",
        *(
            f"| {label} | `{name}` | {points} | {raw_ms:.1f} ms | {rolled_ms:.1f} ms | {raw_ms / rolled_ms:.1f} × |"
            for label, name, points, raw_ms, rolled_ms in rows
        ),
        "",
        "What the rollups leave is the size of the answer: the 7 d fleet chart is every service's 672 buckets "
        f"({args.services} × 672 rows out of the database) whichever way they are summed; the rollups make the rows "
        "read 20 times fewer at a 15 s tick (a 5-minute rollup holds 20 samples), not the rows returned. So the "
        "rollups' time grows with the services and the points, no longer with the tick rate, and one service's "
        "24 h (5,760 samples) was cheap to begin with.",
        "",
        "## The service chart's decisions",
        "",
        f"Then {service.name} was given one decision a tick ({decisions:,}), 2 % of them changes, each with a "
        f"{len(json.dumps(EXPLANATION)):,}-byte explanation holding a forecast, as the engine writes them. The service "
        "chart draws the replicas decisions asked for, a marker per change (the newest 200) and the demand they "
        "forecast. It read every decision in range for the first and every one's forecast out of its explanation "
        "(until 28 Nov 2026); it reads one decision a chart bucket, the newest (`selectors.last_decisions`, "
        "grouped in the database on the (service, tick) index), and the changes alone. Medians of "
        f"{args.runs} alternating calls:",
        "",
        "| range | decisions in range | points drawn | forecast points | every decision | one a bucket | ratio |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {label} | {n:,} | {drawn} | {forecasts} | {every_ms:.1f} ms | {bucketed_ms:.1f} ms | "
            f"{every_ms / bucketed_ms:.1f} × |"
            for label, n, drawn, forecasts, every_ms, bucketed_ms in decision_rows
        ),
        "",
        f"Machine: {cpu_model()}, {os.cpu_count()} cores ({platform.machine()}), {platform.system()}; "
        f"Python {platform.python_version()}, Django {django.get_version()}; {database} on the same machine. "
        f"Load average {', '.join(f'{v:.1f}' for v in load_before)} before and "
        f"{', '.join(f'{v:.1f}' for v in load_after)} after: the machine was shared with other work while measured, "
        "so the ratios say more than the times.",
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print(f"wrote {args.out}")


def _scrub(url: str) -> str:
    """The URL without a password, for the report."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{user}{host}{port}", parts.path, "", ""))


if __name__ == "__main__":
    main()
