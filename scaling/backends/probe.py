"""Test connection: read-only calls that show what Tipoff would see, in plain words.

Used by the service form's "Test connection" button and `manage.py check_backend`.
Never writes to AWS or Prometheus. When the fleet reads fine and the caller names who
is testing, the saved service's circuit breaker for that same resource is closed
(`breaker.reset`): the cause that opened it is shown fixed, so ticks need not wait
out the cool-off.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from scaling.audit import Actor
from scaling.backends import autoscaling, breaker
from scaling.backends.aws_actuator import AwsActuator
from scaling.backends.base import BackendError, MetricWindow, get_actuator
from scaling.models import Service
from scaling.service_config import SIMULATED_METRICS_ON_REAL_BACKEND


@dataclass(frozen=True)
class ProbeLine:
    level: str  # ok | warn | error
    text: str


@dataclass(frozen=True)
class ProbeReport:
    lines: tuple[ProbeLine, ...]

    @property
    def ok(self) -> bool:
        return all(line.level != "error" for line in self.lines)


def _resource_label(service: Service) -> str:
    cfg = service.backend_config or {}
    if service.backend == Service.Backend.SAGEMAKER:
        return f"SageMaker endpoint {cfg.get('endpoint_name')!r} variant {cfg.get('variant_name') or 'AllTraffic'!r}"
    if service.backend == Service.Backend.ECS:
        return f"ECS service {cfg.get('service')!r} in cluster {cfg.get('cluster')!r}"
    return "simulated fleet"


def _actuator_lines(service: Service) -> list[ProbeLine]:
    if service.backend == Service.Backend.SIMULATED:
        return [ProbeLine("ok", "Simulated fleet: nothing to connect to.")]
    actuator = get_actuator(service)
    assert isinstance(actuator, AwsActuator)  # noqa: S101 - every real backend is an AwsActuator
    lines: list[ProbeLine] = []
    label = _resource_label(service)
    try:
        status = actuator.read(service)
    except BackendError as exc:
        return [ProbeLine("error", f"{label}: {exc}")]
    lines.append(
        ProbeLine(
            "warn" if status.busy else "ok",
            f"{label}: {status.detail}; {status.ready} ready of {status.provisioned} provisioned"
            + (" — busy, Tipoff will wait" if status.busy else ""),
        )
    )
    try:
        target = autoscaling.describe_target(service)
    except BackendError as exc:
        lines.append(ProbeLine("error", f"Application Auto Scaling: {exc}"))
        return lines
    if target is None:
        lines.append(ProbeLine("ok", "No Application Auto Scaling target: Tipoff sets capacity directly."))
    else:
        mode = autoscaling.mode_of(service)
        lines.append(ProbeLine("warn" if mode == "refuse" else "ok", autoscaling.ownership_note(service, target)))
    return lines


def _fetch(service: Service, now: datetime) -> MetricWindow:
    if service.metric_source == Service.MetricSourceKind.CLOUDWATCH:
        from scaling.backends import cloudwatch

        result = cloudwatch.fetch_many([service], now)[0]
        if isinstance(result, BackendError):
            raise result
        return result
    if service.metric_source == Service.MetricSourceKind.PROMETHEUS:
        from scaling.backends.prometheus import PrometheusMetricSource

        return PrometheusMetricSource().fetch(service, now)
    raise BackendError("simulated")


def _fmt(value: float | None, unit: str) -> str:
    return "no datapoint" if value is None else f"{value:,.1f}{unit}"


def _metric_lines(service: Service, now: datetime) -> list[ProbeLine]:
    source = service.get_metric_source_display()
    if service.metric_source == Service.MetricSourceKind.SIMULATED:
        if service.backend != Service.Backend.SIMULATED:
            # Stored before the service form refused it (scaling.service_config).
            return [ProbeLine("error", f"{source}: {SIMULATED_METRICS_ON_REAL_BACKEND}")]
        return [ProbeLine("ok", "Simulated metrics: nothing to connect to.")]
    try:
        window = _fetch(service, now)
    except BackendError as exc:
        return [ProbeLine("error", f"{source}: {exc}")]
    with_rate = [p for p in window.points if p.rps is not None]
    if not with_rate:
        return [
            ProbeLine(
                "warn",
                f"{source}: reachable, but no request-rate datapoint in the window — check the identifiers "
                "(and that the service had traffic); until one appears Tipoff holds capacity.",
            )
        ]
    newest = max(with_rate, key=lambda p: p.ts)
    errors = None if newest.error_rate is None else newest.error_rate * 100
    unread = [
        ProbeLine("warn", f"{source}: {signal} unread ({why}); while it is, Tipoff does not scale in.")
        for signal, why in window.unread.items()
    ]
    return [
        ProbeLine(
            "ok",
            f"{source}: {len(with_rate)} datapoint(s); newest at {newest.ts:%Y-%m-%d %H:%M:%S} UTC: "
            f"{_fmt(newest.rps, ' req/s')}, p95 {_fmt(newest.p95_ms, ' ms')}, p99 {_fmt(newest.p99_ms, ' ms')}, "
            f"in flight {_fmt(newest.in_flight, '')}, errors {_fmt(errors, '%')}",
        ),
        *unread,
    ]


def _same_resource(probed: Service, saved: Service) -> bool:
    """Whether a probe of `probed` (perhaps the form's unsaved copy) read the resource `saved` actuates."""
    return probed.backend == saved.backend and autoscaling.scalable_resource(probed) == autoscaling.scalable_resource(
        saved
    )


def _breaker_lines(service: Service, saved: Service | None, now: datetime, actor: Actor) -> list[ProbeLine]:
    """Close the breaker of the saved service the probe just read, and say so."""
    target = saved if saved is not None else (service if service.pk is not None else None)
    if target is None or target.backend == Service.Backend.SIMULATED or not _same_resource(service, target):
        return []
    outcome = breaker.reset(
        target, now, actor=actor, reason=f"Test connection read {_resource_label(target)}", reads_only=True
    )
    if outcome == "closed":
        return [ProbeLine("ok", "Circuit breaker closed: the actuator answered, so the next tick calls it again.")]
    if outcome == "cooloff_ended":
        return [
            ProbeLine(
                "warn",
                "Circuit breaker: the cool-off is ended, but updates failed too and Test connection makes none: "
                "the next tick tries one, and a refusal reopens the breaker.",
            )
        ]
    return []


def probe_connection(
    service: Service, now: datetime, *, actor: Actor | None = None, saved: Service | None = None
) -> ProbeReport:
    """Read the fleet, any Application Auto Scaling target, and the metrics; report each in plain words.

    With an `actor`, a fleet read without error closes the circuit breaker of the saved service (`service`
    itself, or `saved` for the form's unsaved copy) when it is the same resource."""
    try:
        lines = _actuator_lines(service)
    except BackendError as exc:
        lines = [ProbeLine("error", str(exc))]
    if actor is not None and lines and all(line.level != "error" for line in lines):
        lines += _breaker_lines(service, saved, now, actor)
    return ProbeReport(tuple(lines + _metric_lines(service, now)))
