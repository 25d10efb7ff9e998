"""Connecting a service to its backend: validate identifiers, create and reconfigure (audited).

The form, the JSON API and tests all go through `backend_config_from` and the two
service functions here.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Collection
from typing import Any

import boto3
import botocore
from botocore.utils import is_valid_endpoint_url, is_valid_ipv6_endpoint_url
from django.db import IntegrityError, transaction
from django.db.models import F, Field
from django.utils import timezone

from scaling.audit import Actor, EventType, audit_record
from scaling.backends import autoscaling, breaker
from scaling.backends.aws import process_region
from scaling.backends.base import has_userinfo
from scaling.backends.cloudwatch import latency_stats_error
from scaling.backends.prometheus import BEARER_ENV_PREFIX, USERINFO_REFUSED, token_env_error
from scaling.backends.prometheus import SIGNALS as PROM_SIGNALS
from scaling.models import GameDayRule, Override, Service
from scaling.policy.types import SERVICE_RANGES
from scaling.sim.serving import ServingModel, model_ceiling

# Fields of the Service row an administrator sets here (the policy has its own page).
SERVICE_FIELDS = (
    "display_name",
    "description",
    "enabled",
    "backend",
    "metric_source",
    "min_replicas",
    "max_replicas",
    "hard_max_replicas",
    "price_per_replica_hour",
    "slo_latency_ms",
    "slo_target",
    "service_time_ms",
    "concurrency",
    "provisioning_delay_s",
)

# CloudWatch publishes a minute after it ends: allow for it in the engine's staleness check.
DEFAULT_CLOUDWATCH_LAG_S = 120

# backend_config keys the service form does not show (each backend's module documents its own). Set
# through `backend_config_from`, they are validated; an edit that does not give them keeps them as they are.
EXTRA_KEYS = (
    "bearer_token_env",
    "cpu_cores",
    "period_s",
    "lookback_s",
    "publication_lag_s",
    "latency_stats",
    "breaker_errors",
    "breaker_cooloff_s",
)
# A real endpoint would be resized from the simulator's invented traffic.
SIMULATED_METRICS_ON_REAL_BACKEND = (
    "a SageMaker or ECS backend is actuated for real, so it needs its real metrics (CloudWatch or Prometheus): "
    "simulated metrics are invented and Tipoff would resize the endpoint from them"
)
# us-east-1, eu-central-2, us-gov-west-1, us-isob-east-1: letters, dash-separated words, a number.
_REGION = re.compile(r"[a-z]{2}(-[a-z0-9]+)*-[0-9]+")


def _is_endpoint_url(url: str) -> bool:
    """Whether botocore accepts the URL as an endpoint (its own check, so the form agrees with the client)."""
    valid = is_valid_endpoint_url(url) or is_valid_ipv6_endpoint_url(url)
    return url.startswith(("http://", "https://")) and bool(valid)


class ConfigError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    return "" if value is None else str(value).strip()


# What botocore calls each backend's AWS service, and how its errors name it.
_AWS_SERVICES: dict[str, tuple[str, str]] = {
    Service.Backend.SAGEMAKER: ("sagemaker", "SageMaker"),
    Service.Backend.ECS: ("ecs", "ECS"),
}
# SageMaker's own pattern for endpoint and variant names.
_SAGEMAKER_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")


@functools.cache
def _known_regions(aws_service: str) -> frozenset[str]:
    """Every region botocore's bundled endpoint data lists for the service, in every partition (no network)."""
    session = boto3.session.Session()
    return frozenset(
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions(aws_service, partition_name=partition)
    )


def _check_known_region(region: str, backend: str) -> None:
    aws_service, label = _AWS_SERVICES.get(backend, ("cloudwatch", "CloudWatch"))
    known = _known_regions(aws_service)
    if known and region not in known:
        raise ConfigError(
            "region",
            f"{region!r} is not an AWS region where {label} runs (botocore {botocore.__version__} knows "
            f"{len(known)}, e.g. us-east-1, eu-west-1); check the spelling, or update botocore for a new region",
        )


def _sagemaker_name(field: str, name: str) -> str:
    if name.startswith("arn:"):
        given = name.rsplit("/", 1)[-1]
        what = "endpoint" if field == "endpoint_name" else "variant"
        raise ConfigError(field, f"give the {what} name, not its ARN: {given!r} for {name!r}")
    if not _SAGEMAKER_NAME.fullmatch(name):
        raise ConfigError(
            field, f"{name!r} is not a SageMaker name: letters, digits and hyphens, at most 63 characters"
        )
    return name


def backend_config_from(data: dict[str, Any]) -> dict[str, Any]:
    """The backend_config JSON for a backend and metric source, from flat fields.

    Raises ConfigError naming the first missing or malformed field.
    """
    backend = _text(data, "backend") or Service.Backend.SIMULATED
    source = _text(data, "metric_source") or Service.MetricSourceKind.SIMULATED
    if backend not in Service.Backend.values:
        raise ConfigError("backend", f"unknown backend {backend!r}; choose one of {', '.join(Service.Backend.values)}")
    if source not in Service.MetricSourceKind.values:
        raise ConfigError("metric_source", f"unknown metric source {source!r}")
    config: dict[str, Any] = {}
    for key in ("region", "endpoint_url"):
        if _text(data, key):
            config[key] = _text(data, key)
    if backend == Service.Backend.SIMULATED:
        # Its fleet and its metrics are simulated, or its metrics Prometheus's: no AWS client is ever built for it,
        # and a region stored with it would read as where it runs.
        for key in ("region", "endpoint_url"):
            if key in config:
                raise ConfigError(
                    key, f"a simulated service makes no AWS calls, so it takes no {key}: leave {key} empty"
                )
    if config.get("region"):
        _check_region(config, backend)
    if config.get("endpoint_url") and has_userinfo(config["endpoint_url"]):
        raise ConfigError(
            "endpoint_url",
            "endpoint_url must not hold a user or password (user:password@ before the host): it is shown and "
            "logged, and AWS credentials come from the role or the AWS_* variables, never from the URL",
        )
    if config.get("endpoint_url") and not _is_endpoint_url(config["endpoint_url"]):
        raise ConfigError(
            "endpoint_url", f"{config['endpoint_url']!r} is not a URL botocore can call: http:// or https:// and a host"
        )
    if backend == Service.Backend.SAGEMAKER:
        if not _text(data, "endpoint_name"):
            raise ConfigError("endpoint_name", "the SageMaker endpoint name is required")
        config["endpoint_name"] = _sagemaker_name("endpoint_name", _text(data, "endpoint_name"))
        config["variant_name"] = _sagemaker_name("variant_name", _text(data, "variant_name") or "AllTraffic")
    if backend == Service.Backend.ECS:
        for key, label in (("cluster", "the ECS cluster name or ARN"), ("service", "the ECS service name or ARN")):
            if not _text(data, key):
                raise ConfigError(key, f"{label} is required")
            config[key] = _text(data, key)
        for key in ("load_balancer", "target_group"):
            if _text(data, key):
                config[key] = _text(data, key)
    if backend in (Service.Backend.SAGEMAKER, Service.Backend.ECS):
        mode = _text(data, "autoscaling_mode") or "refuse"
        if mode not in autoscaling.MODES:
            raise ConfigError("autoscaling_mode", f"choose one of {', '.join(autoscaling.MODES)}")
        config["autoscaling_mode"] = mode
    if source == Service.MetricSourceKind.SIMULATED and backend != Service.Backend.SIMULATED:
        raise ConfigError("metric_source", SIMULATED_METRICS_ON_REAL_BACKEND)
    if source == Service.MetricSourceKind.CLOUDWATCH:
        if backend == Service.Backend.SIMULATED:
            raise ConfigError("metric_source", "CloudWatch metrics need a SageMaker or ECS backend")
        if backend == Service.Backend.ECS and not (config.get("load_balancer") and config.get("target_group")):
            raise ConfigError(
                "load_balancer",
                "CloudWatch request rate for ECS comes from the ALB: give load balancer and target group",
            )
    if source == Service.MetricSourceKind.PROMETHEUS:
        url = _text(data, "prometheus_url")
        if not url.startswith(("http://", "https://")):
            raise ConfigError("prometheus_url", "the Prometheus URL (http:// or https://) is required")
        if has_userinfo(url):
            raise ConfigError(
                "prometheus_url",
                f"{USERINFO_REFUSED}: put it in an environment variable named {BEARER_ENV_PREFIX}<NAME> and name "
                "that variable in bearer_token_env",
            )
        config["prometheus_url"] = url
        given = data.get("promql")
        promql: dict[str, Any] = dict(given) if isinstance(given, dict) else {}
        promql = {**promql, **{s: _text(data, f"promql_{s}") for s in PROM_SIGNALS if _text(data, f"promql_{s}")}}
        unknown = set(promql) - set(PROM_SIGNALS)
        if unknown:
            raise ConfigError("promql", f"unknown signal(s) {', '.join(sorted(unknown))}")
        if not str(promql.get("rps", "")).strip():
            raise ConfigError("promql_rps", "a PromQL query for the request rate is required")
        config["promql"] = {k: str(v) for k, v in promql.items() if str(v).strip()}
    for key in EXTRA_KEYS:
        if data.get(key) not in (None, ""):
            config[key] = _extra(key, data[key])
    lag = data.get("metrics_lag_s")
    if lag not in (None, ""):
        try:
            config["metrics_lag_s"] = float(lag)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ConfigError("metrics_lag_s", f"{lag!r} is not a number of seconds") from None
        check_range("metrics_lag_s", config["metrics_lag_s"])
    elif source == Service.MetricSourceKind.CLOUDWATCH:
        config["metrics_lag_s"] = DEFAULT_CLOUDWATCH_LAG_S
    if backend in _AWS_SERVICES and not config.get("region"):
        config["region"] = _region_of_this_process(config, backend)
    return config


def _check_region(config: dict[str, Any], backend: str) -> None:
    region = config["region"]
    if not _REGION.fullmatch(region):
        raise ConfigError("region", f"{region!r} is not an AWS region name, e.g. us-east-1")
    if not config.get("endpoint_url"):
        # An AWS-compatible endpoint (endpoint_url) may name any region; AWS itself only its own.
        _check_known_region(region, backend)


def _region_of_this_process(config: dict[str, Any], backend: str) -> str:
    """The region for a SageMaker or ECS service saved without one: this process's, stored with the service.

    Left to each process's AWS_REGION, the web process keyed the service (target_key) in its region while a
    worker with another scaled the endpoint of its own."""
    region = process_region()
    if not region:
        raise ConfigError(
            "region",
            "a SageMaker or ECS service needs its region, e.g. us-east-1: none was given, and this Tipoff process "
            "has no AWS_REGION, AWS_DEFAULT_REGION or profile region to take it from",
        )
    try:
        _check_region(config | {"region": region}, backend)
    except ConfigError as exc:
        raise ConfigError(exc.field, f"{exc.message} (taken from this Tipoff process, as none was given)") from None
    return region


def _extra(key: str, value: Any) -> Any:
    """One EXTRA_KEYS value, checked; raises ConfigError naming the key."""

    def number(low: float, high: float, *, whole: bool) -> float | int:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ConfigError(key, f"{key} must be a number, not {value!r}")
        try:
            n = float(value)
        except ValueError:
            raise ConfigError(key, f"{key} must be a number, not {value!r}") from None
        if not (math.isfinite(n) and low <= n <= high) or (whole and not n.is_integer()):
            kind = "a whole number" if whole else "a number"
            raise ConfigError(key, f"{key} must be {kind} from {low:g} to {high:g}, not {value!r}")
        return int(n) if whole else n

    if key == "bearer_token_env":
        error = token_env_error(value)
        if error:
            raise ConfigError(key, error)
        return value
    if key == "latency_stats":
        error = latency_stats_error(value)
        if error:
            raise ConfigError(key, error)
        return dict(value)
    if key == "cpu_cores":
        return number(0.01, 1024, whole=False)
    if key == "period_s":
        period = number(1, 86_400, whole=True)
        if period not in (1, 5, 10, 30) and period % 60:
            raise ConfigError(
                key, f"{key} must be 1, 5, 10, 30 or a multiple of 60 (a CloudWatch period), not {value!r}"
            )
        return period
    if key == "breaker_errors":
        return number(1, 1000, whole=True)
    # lookback_s, publication_lag_s, breaker_cooloff_s
    return number(0 if key != "breaker_cooloff_s" else 1, 86_400, whole=True)


def _number(x: float) -> str:
    return f"{int(x):,}" if math.isfinite(x) and float(x).is_integer() else f"{x:g}"


def check_range(field: str, value: Any) -> None:
    """Refuse a number outside its SERVICE_RANGES range, naming the field and the range."""
    allowed = SERVICE_RANGES[field]
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return
    if not math.isfinite(value) or not allowed.contains(value):
        low, high = allowed.low or 0, allowed.high or math.inf
        note = f" ({allowed.note})" if allowed.note else ""
        raise ConfigError(field, f"must be from {_number(low)} to {_number(high)}{note}, not {_number(value)}")


def _check_bounds(values: dict[str, Any], *, defaulted: Collection[str] = ()) -> None:
    """Refuse a number out of its range, or bounds out of order; `defaulted` names the fields the caller filled
    with their default, which a refusal says (a create that did not send hard_max_replicas)."""
    for field in SERVICE_RANGES:
        check_range(field, values.get(field))
    for lower, upper in (("min_replicas", "max_replicas"), ("max_replicas", "hard_max_replicas")):
        lo, hi = values.get(lower), values.get(upper)
        if lo is None or hi is None or lo <= hi:
            continue
        if upper in defaulted:
            raise ConfigError(
                upper, f"{lower} {lo} exceeds {upper} {hi} (the default; set {upper} to at least {lo} to raise it)"
            )
        if lower in defaulted:
            raise ConfigError(
                lower, f"{upper} {hi} is below {lower} {lo} (the default; set {lower} to at most {hi} to lower it)"
            )
        raise ConfigError(upper, f"must be at least {lower} ({lo})")


def _outside(bound: int, side: str) -> Callable[[int | None], bool]:
    """Whether a count is past a new bound: above it when the bound is `side` "below" them, else under it."""
    return lambda n: n is not None and (n > bound if side == "below" else n < bound)


def _check_overrides(service: Service, values: dict[str, Any]) -> None:
    """Refuse bounds that would cut an override in force or to come, approved or awaiting approval, or a
    game-day rule's floor: a maximum below a floor, a minimum above a ceiling, a hard limit below a pin.

    Creating one is refused against the bounds (overrides.check_bounds, the rule's check); lowering the bound
    under one afterwards had the engine cap it silently, the override still listed as approved. They are
    named, so the administrator can change or cancel them first."""
    live = Override.objects.filter(
        service=service,
        ends_at__gt=timezone.now(),
        status__in=(Override.Status.APPROVED, Override.Status.PENDING_APPROVAL),
    ).order_by("starts_at", "pk")
    rules = GameDayRule.objects.filter(services=service, enabled=True, floor_replicas__isnull=False).order_by("name")
    checks = (
        ("max_replicas", Override.Kind.FLOOR, "below", "capped at"),
        ("min_replicas", Override.Kind.CEILING, "above", "raised to"),
        ("hard_max_replicas", Override.Kind.PIN, "below", "capped at"),
    )
    for field, kind, side, held in checks:
        bound = values.get(field)
        if bound is None:
            continue
        cut = _outside(int(bound), side)
        asked = [o.replicas for o in live if o.kind == kind and cut(o.replicas)]
        named = [
            f"#{o.pk} {kind} {o.replicas} ({o.get_status_display().lower()}, until {o.ends_at:%Y-%m-%d %H:%M} UTC)"
            for o in live
            if o.kind == kind and cut(o.replicas)
        ]
        if kind == Override.Kind.FLOOR:
            asked += [r.floor_replicas for r in rules if cut(r.floor_replicas)]
            named += [f"game-day rule {r.name} floor {r.floor_replicas}" for r in rules if cut(r.floor_replicas)]
        if named:
            least = f"at least {max(n for n in asked if n is not None)}"
            most = f"at most {min(n for n in asked if n is not None)}"
            raise ConfigError(
                field,
                f"{bound} is {side} {', '.join(named)}: the engine would hold them {held} {bound}, so they could "
                f"not apply as approved; change or cancel them first, or keep {field} "
                f"{least if side == 'below' else most}",
            )


def _check_serving_model(values: dict[str, Any]) -> None:
    """The SLO must be reachable under the serving model, or no replica count would ever satisfy it."""

    def value(name: str) -> Any:
        given = values.get(name)
        if given is not None:
            return given
        field = Service._meta.get_field(name)
        assert isinstance(field, Field)  # noqa: S101 - a concrete column of Service
        return field.get_default()

    target, latency_ms = float(value("slo_target")), float(value("slo_latency_ms"))
    service_ms, concurrency = float(value("service_time_ms")), int(value("concurrency"))
    if not 0.0 < target < 1.0:
        raise ConfigError("slo_target", f"must be a fraction between 0 and 1, e.g. 0.999 (got {target})")
    if service_ms <= 0:
        raise ConfigError("service_time_ms", f"must be above 0 ms (got {service_ms:g})")
    if concurrency < 1:
        raise ConfigError("concurrency", f"must be at least 1 (got {concurrency})")
    ceiling = model_ceiling(ServingModel(service_ms, concurrency, latency_ms, target))
    if target > ceiling:
        raise ConfigError(
            "slo_target",
            f"{target} cannot be met: with a {service_ms:g} ms mean service time, only {ceiling:.5f} of requests "
            f"finish within {latency_ms:g} ms even without queueing; lower the target or raise the latency objective",
        )


def _resource_name(value: Any) -> str:
    """An ECS cluster or service as its name: the last part of an ARN (service/cluster/name or service/name)."""
    text = str(value or "").strip()
    return text.rsplit("/", 1)[-1] if text.startswith("arn:") else text


def target_key(backend: str, config: dict[str, Any]) -> str | None:
    """The AWS resource a service actuates, one string however it was spelled: backend, region, endpoint URL,
    and the endpoint and variant (SageMaker ignores their case) or cluster and service (a name or the ARN's
    name). None for a simulated fleet. Kept in Service.target_key, which is unique.

    From the service's stored settings alone, never the process's environment, so that every process computes
    the same key: a service is saved with its region (backend_config_from), and a service stored without one
    (before regions were stored, where no process had one) is keyed with none."""
    if backend == Service.Backend.SAGEMAKER:
        resource = f"endpoint/{_resource_name(config.get('endpoint_name')).lower()}/variant/"
        resource += str(config.get("variant_name") or "AllTraffic").strip().lower()
    elif backend == Service.Backend.ECS:
        resource = f"service/{_resource_name(config.get('cluster'))}/{_resource_name(config.get('service'))}"
    else:
        return None
    region = str(config.get("region") or "").strip()
    endpoint_url = str(config.get("endpoint_url") or "").strip().rstrip("/").lower()
    return f"{backend}|{region}|{endpoint_url}|{resource}"


def _check_target(key: str | None, backend: str, config: dict[str, Any], *, exclude: int | None = None) -> None:
    """Refuse a target another service manages, naming it. Rows keyed before target_key existed (or created
    without it) are keyed here too, so they are found as well."""
    if key is None:
        return
    others = Service.objects.filter(backend=backend).order_by("pk")
    if exclude is not None:
        others = others.exclude(pk=exclude)
    for other in others.only("name", "display_name", "backend", "backend_config", "target_key"):
        if (other.target_key or target_key(other.backend, other.backend_config or {})) != key:
            continue
        if backend == Service.Backend.SAGEMAKER:
            field = "endpoint_name"
            what = f"SageMaker endpoint {config.get('endpoint_name')!r} variant {config.get('variant_name')!r}"
        else:
            field = "service"
            what = f"ECS service {config.get('service')!r} in cluster {config.get('cluster')!r}"
        region = str(config.get("region") or "").strip() or "no region named"
        raise ConfigError(
            field,
            f"service {other.name} ({other.display_name}) already manages {what} in {region}: two services would "
            "fight over its capacity; edit or remove that one instead",
        )


def _check_display_name(display_name: Any, *, exclude: int | None = None) -> None:
    """Refuse a display name another service has, in any case: the fleet page would show two alike."""
    if not display_name:
        return
    others = Service.objects.filter(display_name__iexact=str(display_name).strip())
    if exclude is not None:
        others = others.exclude(pk=exclude)
    other = others.order_by("pk").first()
    if other is not None:
        raise ConfigError(
            "display_name",
            f"service {other.name} is already shown as {other.display_name!r}: pick a name operators can tell apart",
        )


def service_create(
    *,
    name: str,
    values: dict[str, Any],
    backend_config: dict[str, Any],
    actor: Actor,
    reason: str = "",
    defaulted: Collection[str] = (),
) -> Service:
    """Register a new service (validated) with its audit event, which carries the reason given (as an edit's
    does), or says it was registered when none was. `defaulted` names the fields of `values` the caller filled
    with their default, not given: a refusal of one says it was the default."""
    _check_bounds(values, defaulted=defaulted)
    _check_serving_model(values)
    if Service.objects.filter(name=name).exists():
        raise ConfigError("name", f"a service named {name!r} already exists")
    fields = {k: v for k, v in values.items() if k in SERVICE_FIELDS}
    backend = str(fields.get("backend") or Service.Backend.SIMULATED)
    key = target_key(backend, backend_config)
    _check_target(key, backend, backend_config)
    try:
        with transaction.atomic():
            _check_display_name(fields.get("display_name"))
            service = Service.objects.create(name=name, backend_config=backend_config, target_key=key, **fields)
            audit_record(
                actor=actor,
                event_type=EventType.SERVICE_CREATED,
                service=service,
                object_type="service",
                object_id=service.pk,
                after={"name": name, **fields, "backend_config": backend_config},
                reason=reason.strip() or f"service {name} registered",
            )
    except IntegrityError:
        # Another request took the target (or the name) since the checks above: name what it took.
        _check_target(key, backend, backend_config)
        if Service.objects.filter(name=name).exists():
            raise ConfigError("name", f"a service named {name!r} already exists") from None
        raise
    return service


def service_configure(
    *,
    service: Service,
    values: dict[str, Any],
    backend_config: dict[str, Any],
    actor: Actor,
    reason: str,
    cleared: Collection[str] = (),
) -> bool:
    """Change a service's backend and bounds. Returns False when nothing changed.

    `backend_config` replaces the stored one, except for the EXTRA_KEYS it does not give: the form does not
    show those, so an edit keeps them (checked again), unless `cleared` names them.

    When Tipoff stops managing a target it had taken from Application Auto
    Scaling (service disabled, coexistence mode changed, or the service pointed at
    another resource or region), what it changed is restored after the commit, on
    the target it changed.
    """
    if not reason.strip():
        raise ConfigError("reason", "a reason is required")
    fields = {k: v for k, v in values.items() if k in SERVICE_FIELDS}
    key: str | None = None
    try:
        with transaction.atomic():
            locked = Service.objects.select_for_update().get(pk=service.pk)
            stored = locked.backend_config or {}
            kept = {
                k: _extra(k, stored[k])
                for k in EXTRA_KEYS
                if k in stored and k not in backend_config and k not in cleared
            }
            backend_config = backend_config | kept
            merged = {k: getattr(locked, k) for k in SERVICE_FIELDS} | fields
            _check_bounds(merged)
            _check_serving_model(merged)
            key = target_key(merged["backend"], backend_config)
            _check_target(key, merged["backend"], backend_config, exclude=locked.pk)
            _check_display_name(fields.get("display_name"), exclude=locked.pk)
            _check_overrides(locked, {k: v for k, v in fields.items() if getattr(locked, k) != v})
            before = {k: getattr(locked, k) for k in fields if getattr(locked, k) != fields[k]}
            after = {k: fields[k] for k in before}
            if locked.backend_config != backend_config:
                before["backend_config"] = locked.backend_config
                after["backend_config"] = backend_config
            if not after:
                return False
            Service.objects.filter(pk=service.pk).update(
                **fields, backend_config=backend_config, target_key=key, version=F("version") + 1
            )
            audit_record(
                actor=actor,
                event_type=EventType.SERVICE_UPDATED,
                service=locked,
                object_type="service",
                object_id=locked.pk,
                before=before,
                after=after,
                reason=reason,
            )
    except IntegrityError:
        # Another request took the target since the check above: name what it took.
        _check_target(key, str(fields.get("backend") or service.backend), backend_config, exclude=service.pk)
        raise
    service.refresh_from_db()
    autoscaling.release_quietly(service, actor, reason)
    if "backend" in after or "backend_config" in after:
        # The errors that opened the circuit breaker were the old settings': the new ones get their own try.
        breaker.reset(service, timezone.now(), actor=actor, reason=f"backend settings changed: {reason}")
    return True
