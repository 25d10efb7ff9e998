"""Prometheus as a metric source: one instant query per signal on /api/v1/query.

backend_config:
  prometheus_url   e.g. "http://prometheus:9090"
  promql           {signal: PromQL}; signals: rps, p50_ms, p95_ms, p99_ms,
                   in_flight, error_rate, utilization. Each query must return
                   one series (aggregate with sum()/max()) in the signal's unit —
                   latencies in milliseconds, so multiply a seconds histogram by 1000.
  bearer_token_env name of an environment variable holding a bearer token (optional)

Typical queries (KServe / Triton / vLLM expose histograms like these):
  rps:       sum(rate(http_requests_total{service="win-prob"}[1m]))
  p95_ms:    1000 * histogram_quantile(0.95, sum by (le) (rate(request_duration_seconds_bucket[1m])))
  in_flight: sum(requests_in_flight)
  error_rate: sum(rate(http_requests_total{code=~"5.."}[1m])) / sum(rate(http_requests_total[1m]))

An empty result or NaN is a missing datapoint (None): with no request rate the engine holds.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from typing import Any

from scaling.backends.base import MetricsUnavailable, MetricWindow
from scaling.models import Service
from scaling.policy.types import MetricPoint

SIGNALS = ("rps", "p50_ms", "p95_ms", "p99_ms", "in_flight", "error_rate", "utilization")
TIMEOUT_S = 5.0


def _config(service: Service) -> tuple[str, dict[str, str]]:
    cfg = service.backend_config or {}
    url = str(cfg.get("prometheus_url") or "").rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise MetricsUnavailable(f"backend_config.prometheus_url must be an http(s) URL (got {url!r})", permanent=True)
    queries = {k: str(v) for k, v in (cfg.get("promql") or {}).items() if str(v).strip()}
    unknown = set(queries) - set(SIGNALS)
    if unknown:
        raise MetricsUnavailable(
            f"backend_config.promql has unknown signal(s) {', '.join(sorted(unknown))}; known: {', '.join(SIGNALS)}",
            permanent=True,
        )
    if "rps" not in queries:
        raise MetricsUnavailable("backend_config.promql.rps (request rate) is required", permanent=True)
    return url, queries


def query(service: Service, url: str, promql: str, at: datetime) -> tuple[datetime, float | None]:
    """One instant query; returns (sample time, value or None when empty/NaN)."""
    params = urllib.parse.urlencode({"query": promql, "time": f"{at.timestamp():.3f}"})
    request = urllib.request.Request(f"{url}/api/v1/query?{params}", headers={"Accept": "application/json"})  # noqa: S310 - scheme checked in _config
    token_env = str((service.backend_config or {}).get("bearer_token_env") or "")
    if token_env and os.environ.get(token_env):
        request.add_header("Authorization", f"Bearer {os.environ[token_env]}")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
            body: Any = json.load(response)
    except urllib.error.HTTPError as exc:
        detail = _error_text(exc)
        raise MetricsUnavailable(
            f"Prometheus rejected the query {promql!r}: {detail}", permanent=400 <= exc.code < 500 and exc.code != 429
        ) from exc
    except (urllib.error.URLError, TimeoutError, OSError, http.client.HTTPException) as exc:
        raise MetricsUnavailable(f"cannot reach Prometheus at {url}: {exc}") from exc
    except ValueError as exc:
        # A 200 that is not JSON: typically an auth proxy's login page or a load balancer's error page.
        raise MetricsUnavailable(f"Prometheus at {url} did not answer with JSON (a proxy in the way?): {exc}") from exc
    try:
        return _sample(body, promql, at)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise MetricsUnavailable(
            f"Prometheus query {promql!r} answered in a shape Tipoff cannot read: {exc!r}", permanent=True
        ) from exc


def _sample(body: Any, promql: str, at: datetime) -> tuple[datetime, float | None]:
    """The (time, value) of one instant-query answer; raises MetricsUnavailable for an answer that is not one."""
    if body.get("status") != "success":
        raise MetricsUnavailable(f"Prometheus query {promql!r} failed: {body.get('error', body)}", permanent=True)
    data = body.get("data", {})
    result = data.get("result", [])
    kind = data.get("resultType")
    if kind == "scalar":
        ts, value = result
    elif kind != "vector":
        raise MetricsUnavailable(
            f"Prometheus query {promql!r} returned a {kind} result; write an instant query (no [range] at the end)",
            permanent=True,
        )
    elif not result:
        return at, None
    else:
        if len(result) > 1:
            raise MetricsUnavailable(
                f"Prometheus query {promql!r} returned {len(result)} series; aggregate it to one (sum/max)",
                permanent=True,
            )
        ts, value = result[0]["value"]
    number = float(value)
    return datetime.fromtimestamp(float(ts), tz=UTC), (None if math.isnan(number) or math.isinf(number) else number)


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read()).get("error") or exc)
    except (ValueError, OSError):
        return str(exc)


class PrometheusMetricSource:
    def fetch(self, service: Service, now: datetime) -> MetricWindow:
        url, queries = _config(service)
        values: dict[str, float | None] = {}
        stamp = now
        for signal, promql in queries.items():
            ts, values[signal] = query(service, url, promql, now)
            if signal == "rps":
                stamp = ts
        return MetricWindow(points=(MetricPoint(ts=stamp, **values),))
