"""The Prometheus source against a real Prometheus server (Debian package `prometheus`)
scraping a small exporter this test starts, both on 127.0.0.1 with a 1 s scrape interval;
answers Prometheus would not give (a proxy's page, a stalled query) come from small
stand-in servers on 127.0.0.1."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from conftest import require
from scaling import services
from scaling.backends import MetricsUnavailable
from scaling.backends.probe import probe_connection
from scaling.backends.prometheus import PrometheusMetricSource
from scaling.backends.prometheus import query as prometheus_query
from scaling.models import AuditEvent, Decision, MetricSample, Override, Service, SimulatedFleet
from tests.backends.conftest import decision_of
from tests.factories import make_service, make_user
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db

RPS = 100.0
# Per second: 50 requests under 50 ms, 45 more under 100 ms, the last 5 under 250 ms.
BUCKETS = ((0.05, 50), (0.1, 95), (0.25, 100), ("+Inf", 100))
IN_FLIGHT = 7

PROMQL = {
    # irate: the last two samples, exact for this linear counter; rate() would extrapolate
    # when a loaded machine delays the newest scrape (quantile and error ratio are ratios, unaffected).
    "rps": "sum(irate(inference_requests_total[10s]))",
    "p95_ms": "1000 * histogram_quantile(0.95, sum by (le) (rate(inference_request_duration_seconds_bucket[10s])))",
    "in_flight": "sum(inference_requests_in_flight)",
    "error_rate": "sum(rate(inference_errors_total[10s])) / sum(rate(inference_requests_total[10s]))",
}


class Exporter:
    """Text-format metrics whose counters grow at fixed rates with wall-clock time."""

    def __init__(self) -> None:
        started = time.time()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                # Each sample carries the time its value was computed, so a slow
                # scrape on a busy machine cannot skew rate().
                now = time.time()
                elapsed, ms = now - started, int(now * 1000)
                lines = [
                    "# TYPE inference_requests_total counter",
                    f"inference_requests_total {RPS * elapsed} {ms}",
                    "# TYPE inference_errors_total counter",
                    f"inference_errors_total {RPS * 0.02 * elapsed} {ms}",
                    "# TYPE inference_requests_in_flight gauge",
                    f"inference_requests_in_flight {IN_FLIGHT} {ms}",
                    "# TYPE inference_request_duration_seconds histogram",
                ]
                lines += [
                    f'inference_request_duration_seconds_bucket{{le="{le}"}} {n * elapsed} {ms}' for le, n in BUCKETS
                ]
                lines += [
                    f"inference_request_duration_seconds_count {100 * elapsed} {ms}",
                    f"inference_request_duration_seconds_sum {6.0 * elapsed} {ms}",
                ]
                body = ("\n".join(lines) + "\n").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _query(url: str, promql: str) -> list[Any]:
    with urllib.request.urlopen(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": promql}), timeout=5) as r:  # noqa: S310
        return list(json.load(r)["data"]["result"])


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("prometheus") or ("/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None)
    require(binary is not None, "the prometheus binary is not installed (apt-get install prometheus)")
    assert binary is not None
    exporter = Exporter()
    workdir = tmp_path_factory.mktemp("prometheus")
    config = workdir / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: model\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{exporter.port}']\n"
    )
    port = _free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        # Ready once the rate window is full of scrapes, so rate() is not extrapolated from two points.
        wait_until(
            lambda: bool(_query(url, "count_over_time(inference_requests_total[10s]) >= 9")),
            interval_s=0.2,
            ignore=(OSError,),
        )
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        exporter.server.shutdown()


def _service(url: str, **promql: str) -> Service:
    return make_service(
        "live-odds",
        metric_source=Service.MetricSourceKind.PROMETHEUS,
        backend_config={"prometheus_url": url, "promql": promql or PROMQL},
    )


def test_it_reads_rate_quantile_in_flight_and_errors_from_prometheus(prometheus: str) -> None:
    point = PrometheusMetricSource().fetch(_service(prometheus), timezone.now()).points[0]

    assert point.rps == pytest.approx(RPS, rel=0.15)
    assert point.p95_ms == pytest.approx(100.0, rel=0.15)  # the 0.95 quantile falls on the 100 ms bucket bound
    assert point.in_flight == IN_FLIGHT
    assert point.error_rate == pytest.approx(0.02, rel=0.15)


def test_a_control_tick_scales_on_prometheus_metrics(prometheus: str) -> None:
    service = _service(prometheus)
    tick = timezone.now().replace(microsecond=0)

    decision = decision_of(services.service_evaluate(service_id=service.pk, tick_at=tick))

    assert decision.reason_code != "METRICS_STALE", decision.summary
    assert MetricSample.objects.get(service=service).rps == pytest.approx(RPS, rel=0.15)


def test_an_empty_result_is_a_missing_datapoint_and_the_engine_holds(prometheus: str) -> None:
    service = _service(prometheus, rps="sum(rate(no_such_metric_total[10s]))")
    tick: datetime = timezone.now().replace(microsecond=0)

    assert PrometheusMetricSource().fetch(service, tick).points[0].rps is None
    decision = decision_of(services.service_evaluate(service_id=service.pk, tick_at=tick))
    assert (decision.reason_code, decision.changed) == ("METRICS_STALE", False)


def test_a_bad_query_is_reported_with_prometheus_own_words(prometheus: str) -> None:
    service = _service(prometheus, rps="sum(rate(")
    with pytest.raises(MetricsUnavailable, match="Prometheus rejected the query") as info:
        PrometheusMetricSource().fetch(service, timezone.now())
    assert info.value.permanent


def test_an_unreachable_prometheus_is_a_transient_error() -> None:
    service = _service(f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(MetricsUnavailable, match="cannot reach Prometheus") as info:
        PrometheusMetricSource().fetch(service, timezone.now())
    assert not info.value.permanent


def test_test_connection_reports_what_prometheus_returns(prometheus: str) -> None:
    report = probe_connection(_service(prometheus), timezone.now())

    assert report.ok
    assert "Prometheus: 1 datapoint(s)" in report.lines[-1].text
    assert "in flight 7.0" in report.lines[-1].text


def _serve(handler: type[BaseHTTPRequestHandler], servers: list[ThreadingHTTPServer]) -> str:
    """Serve `handler` on a free port of 127.0.0.1 in a thread (kept in `servers`, for the fixture to stop)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    servers.append(server)
    return f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def answering() -> Iterator[Any]:
    """Start an HTTP server on 127.0.0.1 that answers every GET with 200 and the given body."""
    servers: list[ThreadingHTTPServer] = []

    def start(body: bytes, content_type: str = "application/json") -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        return _serve(Handler, servers)

    yield start
    for server in servers:
        server.shutdown()


def test_a_login_page_from_a_proxy_is_unavailable_metrics_not_a_crash(answering: Any) -> None:
    url = answering(b"<html><body>Sign in</body></html>", "text/html")
    with pytest.raises(MetricsUnavailable, match="did not answer with JSON"):
        PrometheusMetricSource().fetch(_service(url, rps="sum(x)"), timezone.now())


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"resultType": "matrix", "result": [{"metric": {}, "values": [[1, "2"]]}]}, "returned a matrix result"),
        ({"resultType": "vector", "result": [{"metric": {}}]}, "shape Tipoff cannot read"),
        ({"resultType": "vector", "result": [{"metric": {}, "value": [1, "many"]}]}, "shape Tipoff cannot read"),
        ({"resultType": "scalar", "result": None}, "shape Tipoff cannot read"),
    ],
)
def test_an_answer_of_another_shape_is_unavailable_metrics_naming_the_query(
    answering: Any, data: dict[str, Any], message: str
) -> None:
    url = answering(json.dumps({"status": "success", "data": data}).encode())
    with pytest.raises(MetricsUnavailable, match=message) as info:
        PrometheusMetricSource().fetch(_service(url, rps="sum(x)"), timezone.now())
    assert "sum(x)" in str(info.value)


def test_a_tick_on_an_unreadable_answer_holds_and_still_applies_a_pin(answering: Any) -> None:
    service = _service(answering(b"<html>Sign in</html>", "text/html"), rps="sum(x)")
    now = timezone.now()
    Override.objects.create(
        service=service,
        kind=Override.Kind.PIN,
        replicas=6,
        reason="marquee game",
        starts_at=now - timedelta(minutes=5),
        ends_at=now + timedelta(hours=1),
    )

    decision = decision_of(services.service_evaluate(service_id=service.pk, tick_at=services.align_tick(now)))

    assert (decision.desired, decision.actuation) == (6, Decision.Actuation.OK)
    assert "did not answer with JSON" in decision.summary
    assert len(SimulatedFleet.objects.get(service=service).ready_at) == 6


# What the stand-in below answers, each signal's query being the signal's name.
ANSWERS = {"rps": 120.0, "p95_ms": 80.0, "p99_ms": 150.0, "in_flight": 7.0, "error_rate": 0.01}
BUDGET_S = 0.5
# Thread start-up and the answers that do come, on a busy machine.
SLACK_S = 0.5


@pytest.fixture
def stalling() -> Iterator[Any]:
    """Start a Prometheus stand-in on 127.0.0.1 that answers each query from ANSWERS, except that it never
    answers the queries in `hang` and sends its answers to those in `trickle` a byte every 50 ms, so that
    no socket read ever times out. Stalled requests end when the test does."""
    released = threading.Event()
    servers: list[ThreadingHTTPServer] = []

    def start(*, hang: tuple[str, ...] = (), trickle: tuple[str, ...] = ()) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                params = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                promql, at = params["query"][0], float(params["time"][0])
                if promql in hang:
                    released.wait()
                    return
                data = {"resultType": "vector", "result": [{"metric": {}, "value": [at, str(ANSWERS[promql])]}]}
                body = json.dumps({"status": "success", "data": data}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if promql not in trickle:
                    self.wfile.write(body)
                    return
                for i in range(len(body)):
                    if released.wait(0.05):
                        return
                    self.wfile.write(body[i : i + 1])
                    self.wfile.flush()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        return _serve(Handler, servers)

    yield start
    released.set()
    for server in servers:
        server.shutdown()
        server.server_close()


def _shorten(monkeypatch: pytest.MonkeyPatch, timeout_s: float | None = None) -> None:
    monkeypatch.setattr("scaling.backends.prometheus.FETCH_BUDGET_S", BUDGET_S)
    if timeout_s is not None:
        monkeypatch.setattr("scaling.backends.prometheus.TIMEOUT_S", timeout_s)


def _stalled_service(url: str) -> Service:
    return _service(url, **{signal: signal for signal in ANSWERS})


def _timed_fetch(service: Service) -> tuple[Any, float]:
    started = time.monotonic()
    window = PrometheusMetricSource().fetch(service, timezone.now())
    return window, time.monotonic() - started


def test_the_fetch_ends_within_its_budget_however_many_queries_stall(
    stalling: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _shorten(monkeypatch, timeout_s=BUDGET_S)
    url = stalling(hang=("p95_ms", "p99_ms", "in_flight"), trickle=("error_rate",))

    window, elapsed_s = _timed_fetch(_stalled_service(url))

    # One after another, the three hanging queries alone would take three timeouts.
    assert elapsed_s < BUDGET_S + SLACK_S
    assert window.points[0].rps == ANSWERS["rps"]
    assert set(window.unread) == {"p95_ms", "p99_ms", "in_flight", "error_rate"}


def test_a_query_abandoned_on_a_trickling_answer_gives_up_by_the_deadline_too(
    stalling: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A trickle never trips the socket's timeout: a thread left reading it would outlive the fetch, and every
    # tick would leave one more (with its socket) in the worker.
    _shorten(monkeypatch, timeout_s=BUDGET_S)
    url = stalling(trickle=("error_rate",))  # its answer takes a few seconds, a byte every 50 ms

    window, _ = _timed_fetch(_stalled_service(url))

    assert list(window.unread) == ["error_rate"]
    # Every query thread ends within the slack of the deadline (wait_until raises if one does not).
    wait_until(
        lambda: not [t for t in threading.enumerate() if t.name.startswith("prometheus") and t.is_alive()],
        timeout_s=SLACK_S,
        interval_s=0.02,
    )


@pytest.mark.parametrize("signal", ["p95_ms", "rps"])
def test_prometheus_timing_out_a_query_itself_is_a_signal_out_of_time(answering: Any, signal: str) -> None:
    # Prometheus answers 503 with errorType "timeout" when a query outlasts its own -query.timeout: the same
    # as ours running out. A latency signal is unread and the tick goes on; rps fails the fetch, transiently.
    body = json.dumps({"status": "error", "errorType": "timeout", "error": "query timed out in query execution"})
    ok = json.dumps(
        {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "9"]}]}}
    )

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            promql = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)["query"][0]
            payload = (body if promql == signal else ok).encode()
            self.send_response(503 if promql == signal else 200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    servers: list[ThreadingHTTPServer] = []
    url = _serve(Handler, servers)
    try:
        service = _service(url, rps="rps", p95_ms="p95_ms")
        if signal == "rps":
            with pytest.raises(MetricsUnavailable, match="query timed out in query execution") as info:
                PrometheusMetricSource().fetch(service, timezone.now())
            assert not info.value.permanent
        else:
            window = PrometheusMetricSource().fetch(service, timezone.now())
            assert window.points[0].rps == 9.0 and window.points[0].p95_ms is None
            assert "query timed out in query execution" in window.unread["p95_ms"]
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def test_a_stalled_latency_query_is_unread_and_the_other_signals_come_back(
    stalling: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _shorten(monkeypatch, timeout_s=BUDGET_S)
    url = stalling(hang=("p95_ms",))

    window, _ = _timed_fetch(_stalled_service(url))

    point = window.points[0]
    assert (point.rps, point.p95_ms, point.p99_ms, point.in_flight, point.error_rate) == (120.0, None, 150.0, 7.0, 0.01)
    assert list(window.unread) == ["p95_ms"]
    assert f"Prometheus at {url} did not answer 'p95_ms' within" in window.unread["p95_ms"]
    assert "service live-odds: Prometheus signal p95_ms unread" in caplog.text


@pytest.mark.parametrize("stall", ["hang", "trickle"])
def test_an_rps_query_that_outlasts_the_budget_fails_the_fetch_as_transient(
    stalling: Any, monkeypatch: pytest.MonkeyPatch, stall: str
) -> None:
    # The query timeout stays at its 5 s: the budget alone must end the wait.
    _shorten(monkeypatch)
    url = stalling(**{stall: ("rps",)})

    started = time.monotonic()
    with pytest.raises(MetricsUnavailable) as info:
        PrometheusMetricSource().fetch(_stalled_service(url), timezone.now())

    assert time.monotonic() - started < BUDGET_S + SLACK_S
    assert f"Prometheus at {url} did not answer 'rps' within" in str(info.value)
    assert not info.value.permanent


def test_a_tick_with_a_stalled_latency_query_says_which_signal_it_went_without(
    stalling: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _shorten(monkeypatch, timeout_s=BUDGET_S)
    service = _stalled_service(stalling(hang=("p95_ms",)))

    decision = decision_of(
        services.service_evaluate(service_id=service.pk, tick_at=services.align_tick(timezone.now()))
    )

    assert "p95_ms unread: Prometheus at" in decision.summary
    assert "metrics unavailable" not in decision.summary
    assert MetricSample.objects.get(service=service).rps == ANSWERS["rps"]


def test_test_connection_warns_of_a_stalled_signal(stalling: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _shorten(monkeypatch, timeout_s=BUDGET_S)
    report = probe_connection(_stalled_service(stalling(hang=("in_flight",))), timezone.now())

    assert report.ok
    assert "Prometheus: 1 datapoint(s)" in report.lines[-2].text
    assert (report.lines[-1].level, report.lines[-1].text.split(" (")[0]) == ("warn", "Prometheus: in_flight unread")


def test_a_latency_query_of_several_series_is_unread_naming_the_signal_and_rps_still_decides(prometheus: str) -> None:
    # Not aggregated: one series per bucket bound, as a real Prometheus answers it.
    lat = "inference_request_duration_seconds_bucket"
    service = _service(prometheus, rps=PROMQL["rps"], p95_ms=lat)
    tick = timezone.now().replace(microsecond=0)

    window = PrometheusMetricSource().fetch(service, tick)
    decision = decision_of(services.service_evaluate(service_id=service.pk, tick_at=tick))

    assert window.points[0].rps == pytest.approx(RPS, rel=0.15) and window.points[0].p95_ms is None
    assert window.unread["p95_ms"].startswith(f"query {lat!r} returned 4 series, expected one")
    assert decision.reason_code != "METRICS_UNAVAILABLE", decision.summary
    assert f"p95_ms unread: query {lat!r} returned 4 series, expected one" in decision.summary


def test_an_rps_query_that_fails_fails_the_fetch_naming_the_signal(prometheus: str) -> None:
    lat = "inference_request_duration_seconds_bucket"
    service = _service(prometheus, rps=lat)
    with pytest.raises(MetricsUnavailable) as info:
        PrometheusMetricSource().fetch(service, timezone.now())
    assert str(info.value).startswith(f"rps: query {lat!r} returned 4 series, expected one")


@pytest.fixture
def recording() -> Iterator[tuple[Any, list[dict[str, str]]]]:
    """A Prometheus stand-in on 127.0.0.1 answering every query with 1.0 and keeping each request's headers."""
    servers: list[ThreadingHTTPServer] = []
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(dict(self.headers.items()))
            data = {"resultType": "vector", "result": [{"metric": {}, "value": [time.time(), "1"]}]}
            body = json.dumps({"status": "success", "data": data}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    yield _serve(Handler, servers), seen
    for server in servers:
        server.shutdown()
        server.server_close()


def _with_token_env(url: str, variable: str) -> Service:
    return make_service(
        "live-odds",
        metric_source=Service.MetricSourceKind.PROMETHEUS,
        backend_config={"prometheus_url": url, "promql": {"rps": "sum(x)"}, "bearer_token_env": variable},
    )


def test_the_bearer_token_is_sent_from_a_variable_named_for_it(recording: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    url, seen = recording
    monkeypatch.setenv("TIPOFF_PROM_TOKEN_ODDS", "odds-token")

    assert PrometheusMetricSource().fetch(_with_token_env(url, "TIPOFF_PROM_TOKEN_ODDS"), timezone.now()).points
    assert [headers.get("Authorization") for headers in seen] == ["Bearer odds-token"]


def test_a_stored_variable_of_another_name_is_never_sent(recording: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Stored before the rule (or past the API): refused where it is sent, not only where it is saved.
    url, seen = recording
    monkeypatch.setenv("SECRET_KEY", "the-servers-own-secret")
    service = _with_token_env(url, "SECRET_KEY")

    with pytest.raises(MetricsUnavailable, match="beginning TIPOFF_PROM_TOKEN_") as info:
        PrometheusMetricSource().fetch(service, timezone.now())
    assert info.value.permanent
    report = probe_connection(service, timezone.now())
    assert not report.ok and "bearer_token_env must name" in report.lines[-1].text
    with pytest.raises(MetricsUnavailable, match="beginning TIPOFF_PROM_TOKEN_"):
        prometheus_query(service, url, "sum(x)", timezone.now(), deadline=time.monotonic() + 5)
    assert seen == []


@pytest.mark.parametrize(
    ("stored", "said"),
    [
        # Stored before they were refused: never sent (urllib does not use them) and said to be refused.
        ("http://ops:s3cret@127.0.0.1:{port}", "prometheus_url must not hold a user or password"),
        ("http://127.0.0.1:{port}/?token=s3cret", "cannot reach Prometheus at http://127.0.0.1:{port}/"),
    ],
)
def test_a_secret_in_the_stored_url_reaches_no_decision_audit_event_or_log(
    stored: str, said: str, client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # The summary said "cannot reach Prometheus at http://ops:s3cret@...", on the service page, the decision's,
    # the API's decisions and the audit log; the worker logged it too.
    port = _free_port()
    service = _service(stored.format(port=port), rps="sum(x)")
    now = timezone.now()
    Override.objects.create(
        service=service,
        kind=Override.Kind.PIN,
        replicas=4,
        reason="marquee game",
        starts_at=now - timedelta(minutes=5),
        ends_at=now + timedelta(hours=1),
    )

    decision = decision_of(services.service_evaluate(service_id=service.pk, tick_at=services.align_tick(now)))
    client.force_login(make_user("viewer", "viewer"))
    page = client.get(f"/decisions/{decision.pk}/").content.decode()
    api = client.get(f"/api/decisions/{decision.pk}").content.decode()
    probe = probe_connection(service, now)

    assert said.format(port=port) in decision.summary
    audited = " ".join(f"{e.reason} {e.after}" for e in AuditEvent.objects.filter(service=service))
    assert decision.summary in audited
    for shown in (decision.summary, page, api, audited, caplog.text, " ".join(line.text for line in probe.lines)):
        assert "s3cret" not in shown
