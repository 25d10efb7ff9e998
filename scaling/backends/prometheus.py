"""Prometheus as a metric source: one instant query per signal on /api/v1/query,
all at once, within one budget for the whole fetch.

backend_config:
  prometheus_url   e.g. "http://prometheus:9090"
  promql           {signal: PromQL}; signals: rps, p50_ms, p95_ms, p99_ms,
                   in_flight, error_rate, utilization. Each query must return
                   one series (aggregate with sum()/max()) in the signal's unit —
                   latencies in milliseconds, so multiply a seconds histogram by 1000.
  bearer_token_env name of an environment variable holding a bearer token (optional); only a name
                   beginning TIPOFF_PROM_TOKEN_ is accepted (BEARER_ENV_PREFIX), checked again before
                   sending: the URL is the administrator's to choose, and any other name would let them
                   send one of the server's own secrets (SECRET_KEY, AWS_SECRET_ACCESS_KEY) to it
  The URL may hold no user or password (user:password@): it is shown to viewers and logged.

Typical queries (KServe / Triton / vLLM expose histograms like these):
  rps:       sum(rate(http_requests_total{service="win-prob"}[1m]))
  p95_ms:    1000 * histogram_quantile(0.95, sum by (le) (rate(request_duration_seconds_bucket[1m])))
  in_flight: sum(requests_in_flight)
  error_rate: sum(rate(http_requests_total{code=~"5.."}[1m])) / sum(rate(http_requests_total[1m]))

An empty result or NaN is a missing datapoint (None): with no request rate the engine holds.

Time: the queries run at once. Each waits at most TIMEOUT_S (or what is left of the
budget) for Prometheus to connect or send more, and the whole fetch ends after
FETCH_BUDGET_S: a query still unanswered then is abandoned. An rps query that fails,
by running out of time or otherwise (rejected, several series, an unreadable answer),
fails the fetch (MetricsUnavailable, its message beginning "rps: ") and the engine holds;
any other signal that fails is unread (`MetricWindow.unread`, None in the point, the
reason logged and named in the decision's summary as "<signal> unread: ..."), and the
engine scales out on the rest but does not scale in. A configuration error (the URL, no
rps query) fails the fetch whatever the signal.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime
from typing import Any

from scaling.backends.base import MetricsUnavailable, MetricWindow, has_userinfo
from scaling.models import Service
from scaling.policy.types import MetricPoint

log = logging.getLogger(__name__)

SIGNALS = ("rps", "p50_ms", "p95_ms", "p99_ms", "in_flight", "error_rate", "utilization")
# One query's socket timeout: Prometheus answers an instant query in well under a second.
TIMEOUT_S = 5.0
# The whole fetch. Over one query's timeout, so a query that is merely slow still gets all of it; well inside
# a 15 s tick, and inside the evaluation's 45 s soft time limit after the fleet status call before it
# (aws.worst_call_s). A server that trickles its answer never trips a socket timeout: only this ends it.
FETCH_BUDGET_S = 8.0
MAX_ANSWER_BYTES = 4 * 1024 * 1024  # an instant query of one series answers in a few hundred bytes
# The only environment variables sent as a bearer token: ones named for it, never the server's own secrets.
BEARER_ENV_PREFIX = "TIPOFF_PROM_TOKEN_"
_BEARER_ENV = re.compile(rf"{BEARER_ENV_PREFIX}[A-Za-z0-9_]+")


def token_env_error(name: object) -> str | None:
    """Why `name` may not be bearer_token_env, or None when it may."""
    if isinstance(name, str) and _BEARER_ENV.fullmatch(name):
        return None
    return (
        f"bearer_token_env must name an environment variable beginning {BEARER_ENV_PREFIX} (then letters, digits "
        f"or _, e.g. {BEARER_ENV_PREFIX}PROD), not {name!r}: Tipoff sends no other variable to Prometheus, so that "
        "none of its own secrets can be sent to a URL of one's choosing"
    )


# What is said of a URL holding a user and password, stored or given.
USERINFO_REFUSED = (
    "prometheus_url must not hold a user or password (user:password@ before the host): the URL is shown on the "
    "service page and in decisions and logs; give a bearer token instead"
)


class QueryTimedOut(MetricsUnavailable):
    """A query Prometheus did not answer in time (its own timeout or the fetch budget): transient."""


def _config(service: Service) -> tuple[str, dict[str, str]]:
    cfg = service.backend_config or {}
    url = str(cfg.get("prometheus_url") or "").rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise MetricsUnavailable(f"backend_config.prometheus_url must be an http(s) URL (got {url!r})", permanent=True)
    if has_userinfo(url):
        # Shown wherever the URL is (and never sent: urllib does not use it): refused, whatever was stored.
        raise MetricsUnavailable(
            f"backend_config.{USERINFO_REFUSED} (bearer_token_env, naming a {BEARER_ENV_PREFIX}... variable)",
            permanent=True,
        )
    _bearer_token(service)  # a name Tipoff will not send fails the fetch before any query
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


def query(service: Service, url: str, promql: str, at: datetime, *, deadline: float) -> tuple[datetime, float | None]:
    """One instant query, answered by `deadline` (time.monotonic()) or given up; returns (sample time, value or
    None when empty/NaN)."""
    timeout_s = min(TIMEOUT_S, max(deadline - time.monotonic(), 0.001))
    params = urllib.parse.urlencode({"query": promql, "time": f"{at.timestamp():.3f}"})
    request = urllib.request.Request(f"{url}/api/v1/query?{params}", headers={"Accept": "application/json"})  # noqa: S310 - scheme checked in _config
    token = _bearer_token(service)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            body: Any = json.loads(_read_by(response, deadline, url, promql))
    except urllib.error.HTTPError as exc:
        detail = _error_text(exc)
        if exc.code == 503:
            # Prometheus's own query timeout (errorType "timeout") or its shedding load: out of time, as ours.
            raise QueryTimedOut(f"Prometheus at {url} could not answer {promql!r} in time: {detail}") from exc
        raise MetricsUnavailable(
            f"Prometheus rejected the query {promql!r}: {detail}", permanent=400 <= exc.code < 500 and exc.code != 429
        ) from exc
    except (urllib.error.URLError, TimeoutError, OSError, http.client.HTTPException) as exc:
        # A timeout while connecting comes wrapped in a URLError; one while reading comes bare.
        if isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None), TimeoutError):
            raise QueryTimedOut(f"Prometheus at {url} did not answer {promql!r} within {timeout_s:.1f} s") from exc
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


def _bearer_token(service: Service) -> str | None:
    """The token in the variable bearer_token_env names, if set. The name is checked here too, where it is sent,
    and not only when it is stored: one stored another way (or before the rule) is refused, not sent."""
    name = (service.backend_config or {}).get("bearer_token_env")
    if not name:
        return None
    error = token_env_error(name)
    if error:
        raise MetricsUnavailable(f"backend_config.{error}", permanent=True)
    return os.environ.get(str(name)) or None


def _read_by(response: Any, deadline: float, url: str, promql: str) -> bytes:
    """The answer's body, read a chunk at a time until `deadline`: a server that trickles its answer never
    trips the socket's timeout, and a thread left reading it would outlive the fetch, one more every tick."""
    chunks: list[bytes] = []
    size = 0
    while chunk := response.read1(65536):
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise MetricsUnavailable(
                f"Prometheus at {url} answered {promql!r} with over {MAX_ANSWER_BYTES:,} bytes; aggregate it to "
                "one series (sum/max)",
                permanent=True,
            )
        chunks.append(chunk)
        if time.monotonic() > deadline:
            raise _past_budget(url, promql)
    return b"".join(chunks)


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
                f"query {promql!r} returned {len(result)} series, expected one; aggregate it to one (sum/max)",
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


def _query_within(
    deadline: float, service: Service, url: str, promql: str, at: datetime
) -> tuple[datetime, float | None]:
    if deadline - time.monotonic() <= 0:
        raise _past_budget(url, promql)
    return query(service, url, promql, at, deadline=deadline)


def _past_budget(url: str, promql: str) -> QueryTimedOut:
    return QueryTimedOut(f"Prometheus at {url} did not answer {promql!r} within the {FETCH_BUDGET_S:g} s fetch budget")


class PrometheusMetricSource:
    def fetch(self, service: Service, now: datetime) -> MetricWindow:
        """Every configured signal at `now`, within FETCH_BUDGET_S.

        1. Start every query at once, each with TIMEOUT_S or what is left of the budget if less.
        2. Wait until all have answered or the budget is spent; abandon the rest (nothing waits for them; each
           gives up by the deadline too, or within TIMEOUT_S of it, its socket blocked on one read).
        3. Read the outcomes in SIGNALS order, so the same failures give the same answer: a failed rps fails
           the fetch; another signal that failed (out of time, rejected, several series...) is unread.
        """
        url, queries = _config(service)
        deadline = time.monotonic() + FETCH_BUDGET_S
        pool = ThreadPoolExecutor(max_workers=len(queries), thread_name_prefix="prometheus")
        pending = {
            signal: pool.submit(_query_within, deadline, service, url, promql, now)
            for signal, promql in queries.items()
        }
        wait(pending.values(), timeout=max(deadline - time.monotonic(), 0.0))
        pool.shutdown(wait=False, cancel_futures=True)

        values: dict[str, float | None] = {}
        unread: dict[str, str] = {}
        stamp = now
        for signal in sorted(pending, key=SIGNALS.index):
            future = pending[signal]
            try:
                if not future.done() or future.cancelled():
                    raise _past_budget(url, queries[signal])
                ts, values[signal] = future.result()
            except MetricsUnavailable as exc:
                if signal == "rps":
                    # Without the request rate there is nothing to decide on: the fetch fails, naming the signal.
                    raise type(exc)(f"rps: {exc}", permanent=exc.permanent) from exc
                values[signal] = None
                unread[signal] = str(exc)
                log.warning("service %s: Prometheus signal %s unread: %s", service.name, signal, exc)
                continue
            if signal == "rps":
                stamp = ts
        return MetricWindow(points=(MetricPoint(ts=stamp, **values),), unread=unread)
