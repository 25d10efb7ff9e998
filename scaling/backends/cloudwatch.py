"""CloudWatch as a metric source, through GetMetricData in batches.

One GetMetricData call carries every signal of every CloudWatch-backed service
in the same region/endpoint (up to 500 queries per call): the first service
evaluated in a tick fetches for all of them and leaves the others' windows in
Redis for that tick (`fetch`), or a caller can batch explicitly (`fetch_many`).

Units and timing:
- SageMaker ModelLatency and OverheadLatency are MICROseconds; ALB
  TargetResponseTime is seconds. Both become milliseconds here.
- Datapoints are per period (60 s by default; 1/5/10/30 for high-resolution
  metrics). A point's `ts` is the END of its period.
- The newest period is still being published: periods ending after
  `now - publication_lag_s` (default 60 s) are not read, so a half-filled
  minute never looks like a traffic drop. The engine's staleness allowance for
  the service is `backend_config["metrics_lag_s"]` (the service form defaults it
  to 120 s for CloudWatch).
- A missing datapoint stays None; with no fresh request rate the engine holds.
- In-flight requests stay None: the engine reads them as a fleet total, and
  CloudWatch has none. SageMaker's ConcurrentRequestsPerModel is per model
  container (its Maximum is the busiest one); read as a total it would size the
  fleet as if it were one container. Use Prometheus for an in-flight target.

backend_config keys: region, endpoint_url, period_s, lookback_s, publication_lag_s;
SageMaker: endpoint_name, variant_name, cpu_cores; ECS: cluster, service,
load_balancer and target_group (the ALB dimension values, e.g.
"app/my-alb/123" and "targetgroup/my-tg/456").
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from scaling.backends import aws
from scaling.backends.base import MetricsUnavailable, MetricWindow
from scaling.models import Service
from scaling.policy.types import MetricPoint

log = logging.getLogger(__name__)

MAX_QUERIES_PER_CALL = 500


@dataclass(frozen=True)
class Signal:
    key: str  # query id suffix
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str  # Sum | Average | Maximum | p95 | ...


def _short(name: str) -> str:
    return name.rsplit("/", 1)[-1] if name.startswith("arn:") else name


def signals(service: Service) -> list[Signal]:
    """The CloudWatch queries for one service's metric window."""
    cfg = service.backend_config or {}
    out: list[Signal] = []
    if service.backend == Service.Backend.SAGEMAKER:
        dims = (
            ("EndpointName", str(cfg.get("endpoint_name", ""))),
            ("VariantName", str(cfg.get("variant_name") or "AllTraffic")),
        )
        ns = "AWS/SageMaker"
        out += [
            Signal("inv", ns, "Invocations", dims, "Sum"),
            Signal("err", ns, "Invocation5XXErrors", dims, "Sum"),
            Signal("cpu", "/aws/sagemaker/Endpoints", "CPUUtilization", dims, "Average"),
        ]
        for field, stat in latency_stats(service).items():
            out += [
                Signal(f"ml_{field}", ns, "ModelLatency", dims, stat),
                Signal(f"ol_{field}", ns, "OverheadLatency", dims, stat),
            ]
        return out
    if service.backend == Service.Backend.ECS:
        dims = (
            ("ClusterName", _short(str(cfg.get("cluster", "")))),
            ("ServiceName", _short(str(cfg.get("service", "")))),
        )
        out.append(Signal("cpu", "AWS/ECS", "CPUUtilization", dims, "Average"))
        lb, tg = str(cfg.get("load_balancer") or ""), str(cfg.get("target_group") or "")
        if lb and tg:
            alb = (("LoadBalancer", lb), ("TargetGroup", tg))
            ns = "AWS/ApplicationELB"
            # Total demand: RequestCountPerTarget is already divided by the target
            # count Tipoff sets, so it cannot measure demand on its own.
            out += [
                Signal("req", ns, "RequestCount", alb, "Sum"),
                Signal("err", ns, "HTTPCode_Target_5XX_Count", alb, "Sum"),
            ]
            out += [
                Signal(f"rt_{f}", ns, "TargetResponseTime", alb, stat) for f, stat in latency_stats(service).items()
            ]
        return out
    raise MetricsUnavailable(
        f"CloudWatch metrics need a SageMaker or ECS backend (service {service.name!r} is {service.backend!r})",
        permanent=True,
    )


DEFAULT_LATENCY_STATS = {"p50_ms": "p50", "p95_ms": "p95", "p99_ms": "p99"}

# The statistics GetMetricData takes (CloudWatch's "Statistics definitions"): the five plain ones, the
# interquartile mean, a percentile and the shorthand trimmed or winsorized ones (p99.9, tm90, wm99, tc90,
# ts90), and ranges in percent or the metric's unit (TM(10%:90%), TS(:0.5), PR(:300) in the unit only).
# One it rejects fails the whole call, every service of the region with it.
_PERCENT = r"(?:100(?:\.0+)?|\d{1,2}(?:\.\d+)?)"
_VALUE = r"\d+(?:\.\d+)?"
_RANGE = rf"(?:{_PERCENT}%:(?:{_PERCENT}%)?|:{_PERCENT}%|{_VALUE}:(?:{_VALUE})?|:{_VALUE})"
STATISTIC = re.compile(
    rf"SampleCount|Average|Sum|Minimum|Maximum|IQM|(?:p|tm|wm|tc|ts){_PERCENT}"
    rf"|(?:TM|WM|TC|TS)\({_RANGE}\)|PR\((?:{_VALUE}:(?:{_VALUE})?|:{_VALUE})\)"
)


def latency_stats_error(chosen: object) -> str:
    """What is wrong with a latency_stats mapping, in words naming the field, or "" when nothing is."""
    if not isinstance(chosen, dict) or not chosen:
        return 'latency_stats must map latency fields to CloudWatch statistics, e.g. {"p95_ms": "p95"}'
    unknown = set(chosen) - set(DEFAULT_LATENCY_STATS)
    if unknown:
        return f"latency_stats has unknown field(s) {', '.join(sorted(map(str, unknown)))}"
    for field, stat in chosen.items():
        if not isinstance(stat, str) or not STATISTIC.fullmatch(stat):
            return (
                f"latency_stats {field}: {stat!r} is not a CloudWatch statistic "
                "(e.g. p95, p99.9, Average, Maximum, tm90, TM(10%:90%))"
            )
    return ""


def latency_stats(service: Service) -> dict[str, str]:
    """Which CloudWatch statistic feeds each latency field (extended statistics by default)."""
    chosen = (service.backend_config or {}).get("latency_stats")
    if chosen is None:
        return dict(DEFAULT_LATENCY_STATS)
    error = latency_stats_error(chosen)
    if error:
        raise MetricsUnavailable(f"backend_config.{error}", permanent=True)
    return {str(k): str(v) for k, v in chosen.items()}


def _period(service: Service) -> int:
    return int((service.backend_config or {}).get("period_s") or 60)


def _window(service: Service, now: datetime) -> tuple[datetime, datetime]:
    cfg = service.backend_config or {}
    period = _period(service)
    lag = int(cfg.get("publication_lag_s", 60))
    lookback = int(cfg.get("lookback_s") or 600)
    cutoff = int((now - timedelta(seconds=lag)).timestamp())
    end = datetime.fromtimestamp(cutoff - cutoff % period, tz=UTC)
    return end - timedelta(seconds=max(lookback, 2 * period)), end


def _query(qid: str, sig: Signal, period: int) -> dict[str, Any]:
    return {
        "Id": qid,
        "MetricStat": {
            "Metric": {
                "Namespace": sig.namespace,
                "MetricName": sig.metric,
                "Dimensions": [{"Name": n, "Value": v} for n, v in sig.dimensions],
            },
            "Period": period,
            "Stat": sig.stat,
        },
        "ReturnData": True,
    }


def _group_key(service: Service) -> tuple[str | None, str | None]:
    cfg = service.backend_config or {}
    return aws.region_of(cfg), (str(cfg.get("endpoint_url") or "") or None)


def _series(result: dict[str, Any]) -> dict[datetime, float]:
    out: dict[datetime, float] = {}
    for ts, value in zip(result.get("Timestamps", []), result.get("Values", []), strict=False):
        if value is None:
            continue
        stamp = ts if isinstance(ts, datetime) else datetime.fromisoformat(str(ts))
        out[stamp.astimezone(UTC)] = float(value)
    return out


def _sum_ms(a: float | None, b: float | None, scale: float) -> float | None:
    if a is None:
        return None
    return (a + (b or 0.0)) * scale


def points_for(
    service: Service, series: dict[str, dict[datetime, float]], start: datetime, end: datetime
) -> tuple[MetricPoint, ...]:
    """Turn one service's per-signal series into MetricPoints, one per period, oldest first."""
    period = _period(service)
    cfg = service.backend_config or {}
    stamps = sorted({t for s in series.values() for t in s if start <= t < end})
    points: list[MetricPoint] = []
    for t in stamps:
        v = {k: s.get(t) for k, s in series.items()}
        if service.backend == Service.Backend.SAGEMAKER:
            requests = v.get("inv")
            cores = float(cfg.get("cpu_cores") or 1)
            point = MetricPoint(
                ts=t + timedelta(seconds=period),
                rps=None if requests is None else requests / period,
                # ModelLatency + OverheadLatency, microseconds -> milliseconds.
                p50_ms=_sum_ms(v.get("ml_p50_ms"), v.get("ol_p50_ms"), 1 / 1000),
                p95_ms=_sum_ms(v.get("ml_p95_ms"), v.get("ol_p95_ms"), 1 / 1000),
                p99_ms=_sum_ms(v.get("ml_p99_ms"), v.get("ol_p99_ms"), 1 / 1000),
                utilization=None if v.get("cpu") is None else v["cpu"] / (100.0 * cores),  # type: ignore[operator]
                error_rate=None if not requests or v.get("err") is None else v["err"] / requests,  # type: ignore[operator]
            )
        else:
            requests = v.get("req")
            point = MetricPoint(
                ts=t + timedelta(seconds=period),
                rps=None if requests is None else requests / period,
                # TargetResponseTime, seconds -> milliseconds.
                p50_ms=_sum_ms(v.get("rt_p50_ms"), None, 1000.0),
                p95_ms=_sum_ms(v.get("rt_p95_ms"), None, 1000.0),
                p99_ms=_sum_ms(v.get("rt_p99_ms"), None, 1000.0),
                utilization=None if v.get("cpu") is None else v["cpu"] / 100.0,  # type: ignore[operator]
                error_rate=None if not requests or v.get("err") is None else v["err"] / requests,  # type: ignore[operator]
            )
        points.append(point)
    return tuple(points)


def fetch_many(services: Sequence[Service], now: datetime) -> dict[int, MetricWindow | MetricsUnavailable]:
    """Metric windows for many services with as few GetMetricData calls as possible.

    Keyed by position in `services` (services may be unsaved, e.g. a connection test).
    One call per region/endpoint per 500 queries; NextToken pages are followed.
    """
    results: dict[int, MetricWindow | MetricsUnavailable] = {}
    plans: dict[int, tuple[list[Signal], datetime, datetime]] = {}
    groups: dict[tuple[str | None, str | None], list[int]] = defaultdict(list)
    for i, service in enumerate(services):
        try:
            plans[i] = (signals(service), *_window(service, now))
        except MetricsUnavailable as exc:
            results[i] = exc
            continue
        groups[_group_key(service)].append(i)

    for members in groups.values():
        results |= _fetch_group(services, members, plans)
    return results


def _fetch_group(
    services: Sequence[Service], members: list[int], plans: dict[int, tuple[list[Signal], datetime, datetime]]
) -> dict[int, MetricWindow | MetricsUnavailable]:
    """The windows of services that share a region and endpoint, in as few calls as possible.

    GetMetricData fails the whole call for one query it rejects (or chokes on: a 5xx): after a failed call
    of several services each is asked alone, so only the one at fault goes without metrics."""
    # GetMetricData takes one time range per call; use the widest the group needs.
    start = min(plans[i][1] for i in members)
    end = max(plans[i][2] for i in members)
    queries: list[tuple[int, str, dict[str, Any]]] = []
    for i in members:
        for sig in plans[i][0]:
            queries.append((i, sig.key, _query(f"s{i}_{sig.key}", sig, _period(services[i]))))
    series: dict[int, dict[str, dict[datetime, float]]] = defaultdict(dict)
    try:
        client = aws.client("cloudwatch", services[members[0]].backend_config or {}, error_cls=MetricsUnavailable)
        for chunk_start in range(0, len(queries), MAX_QUERIES_PER_CALL):
            chunk = queries[chunk_start : chunk_start + MAX_QUERIES_PER_CALL]
            by_id = {q["Id"]: (i, key) for i, key, q in chunk}
            for result in _get_metric_data(client, [q for _, _, q in chunk], start, end):
                i, key = by_id[result["Id"]]
                merged = series[i].setdefault(key, {})
                merged.update(_series(result))
    except MetricsUnavailable as exc:
        # Whatever failed the call (a rejected query, or a 5xx or throttling that one service's queries may have
        # caused), each service is asked alone, once: only the one at fault goes without metrics. Only a batch
        # of several is retried, so a regional outage costs one call more per service, not more each time.
        if len(members) > 1:
            alone: dict[int, MetricWindow | MetricsUnavailable] = {}
            for i in members:
                alone |= _fetch_group(services, [i], plans)
            return alone
        return dict.fromkeys(members, exc)
    return {i: MetricWindow(points=points_for(services[i], series.get(i, {}), *plans[i][1:])) for i in members}


def _get_metric_data(
    client: Any, queries: list[dict[str, Any]], start: datetime, end: datetime
) -> Iterable[dict[str, Any]]:
    token: str | None = None
    while True:
        params: dict[str, Any] = {
            "MetricDataQueries": queries,
            "StartTime": start,
            "EndTime": end,
            "ScanBy": "TimestampAscending",
        }
        if token:
            params["NextToken"] = token
        page = aws.call(client, "GetMetricData", resource="CloudWatch metrics", error_cls=MetricsUnavailable, **params)
        for message in page.get("Messages", []):
            log.warning("CloudWatch: %s", message.get("Value"))
        yield from page.get("MetricDataResults", [])
        token = page.get("NextToken")
        if not token:
            return


# --- one call per tick for every CloudWatch service (shared through Redis) ---


def _encode(window: MetricWindow | MetricsUnavailable) -> str:
    if isinstance(window, MetricsUnavailable):
        return json.dumps({"error": str(window), "permanent": window.permanent})
    return json.dumps({"points": [asdict(p) | {"ts": p.ts.isoformat()} for p in window.points]})


def _decode(raw: bytes | str) -> MetricWindow:
    data = json.loads(raw)
    if "error" in data:
        raise MetricsUnavailable(data["error"], permanent=bool(data.get("permanent")))
    return MetricWindow(
        points=tuple(MetricPoint(**(p | {"ts": datetime.fromisoformat(p["ts"])})) for p in data["points"])
    )


class CloudWatchMetricSource:
    def fetch(self, service: Service, now: datetime) -> MetricWindow:
        if service.pk is None:
            return _unwrap(fetch_many([service], now)[0])
        import redis as redis_lib

        from scaling.services import redis_client

        region, endpoint = _group_key(service)
        key = f"tipoff:cloudwatch:{region}:{endpoint}:{int(now.timestamp())}"
        try:
            r = redis_client()
            cached = r.hget(key, str(service.pk))
            if cached is not None:
                return _decode(cached)
            with r.lock(f"{key}:lock", timeout=30, blocking_timeout=20):
                cached = r.hget(key, str(service.pk))
                if cached is not None:
                    return _decode(cached)
                peers = [
                    s
                    for s in Service.objects.filter(enabled=True, metric_source=Service.MetricSourceKind.CLOUDWATCH)
                    if s.pk != service.pk and _group_key(s) == (region, endpoint)
                ]
                batch = [service, *peers]
                windows = fetch_many(batch, now)
                r.hset(key, mapping={str(s.pk): _encode(windows[i]) for i, s in enumerate(batch)})
                r.expire(key, 300)
                return _unwrap(windows[0])
        except redis_lib.RedisError as exc:
            log.warning("CloudWatch batch cache unavailable (%s); fetching service %s alone", exc, service.pk)
            return _unwrap(fetch_many([service], now)[0])


def _unwrap(window: MetricWindow | MetricsUnavailable) -> MetricWindow:
    if isinstance(window, MetricsUnavailable):
        raise window
    return window
