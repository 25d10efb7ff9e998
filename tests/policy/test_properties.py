"""Invariants of `decide`, checked on generated inputs (hypothesis).

EXAMPLES per property × the properties below ≥ 10,000 examples per run; set
TIPOFF_HYPOTHESIS_EXAMPLES to run more (or fewer, locally).
"""

from __future__ import annotations

import math
import os
from dataclasses import replace
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaling.policy import EngineInput, MetricPoint, Mode, OverrideSpec, PastRecommendation, PolicyParams, decide
from scaling.policy.stability import scale_down_limit, scale_up_limit
from scaling.policy.types import ServiceSpec
from tests.policy.builders import T0, game

EXAMPLES = int(os.environ.get("TIPOFF_HYPOTHESIS_EXAMPLES", "1500"))
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

rates = st.floats(min_value=0.0, max_value=30_000.0, allow_nan=False)
latencies = st.one_of(st.none(), st.floats(min_value=1.0, max_value=5_000.0, allow_nan=False))


SERVICES = [
    ServiceSpec(min_replicas=1, max_replicas=40, hard_max_replicas=60),
    ServiceSpec(min_replicas=0, max_replicas=300, hard_max_replicas=400, provisioning_delay_s=420, metrics_lag_s=60),
    ServiceSpec(min_replicas=5, max_replicas=8, hard_max_replicas=10, provisioning_delay_s=60),
    ServiceSpec(min_replicas=2, max_replicas=120, hard_max_replicas=120, concurrency=1, service_time_ms=100),
]
PARAMS = [
    PolicyParams(),
    PolicyParams(target_utilization=0.7, prewarm=False),
    PolicyParams(target_utilization=0.5, target_rps_per_replica=50, target_in_flight_per_replica=3, tolerance=0),
    PolicyParams(scale_down_stabilization_s=0, scale_up_pods=0, scale_up_percent=10, scale_down_percent=10),
    PolicyParams(scale_down_stabilization_s=300, scale_in_cooldown_s=300, scale_down_pods=2, scale_down_percent=0),
    PolicyParams(reactive_headroom=0.2, slo_guard=False, panic_threshold=0, fallback_replicas=30),
    PolicyParams(
        model_sizing=False, target_utilization=0.9, scale_up_pods=8, scale_up_percent=300, fallback_replicas=3
    ),
]
AGES = (0, 15, 30, 45, 60, 90, 120, 200, 900)


@st.composite
def metric_windows(draw: st.DrawFn) -> tuple[MetricPoint, ...]:
    samples = draw(st.lists(st.tuples(st.sampled_from(AGES), st.one_of(st.none(), rates)), max_size=5))
    latency, error_rate, utilization = draw(st.tuples(latencies, st.sampled_from([None, 0.0, 0.05]), st.floats(0, 3)))
    by_age = dict(samples)
    return tuple(
        MetricPoint(
            ts=T0 - timedelta(seconds=age),
            rps=rps,
            p95_ms=latency,
            p99_ms=latency,
            utilization=utilization,
            in_flight=None if rps is None else rps * 0.05,
            error_rate=error_rate,
        )
        for age, rps in sorted(by_age.items(), reverse=True)
    )


OVERRIDE_KINDS = ("pin", "floor", "ceiling", "freeze_scale_in", "freeze")


@st.composite
def overrides(draw: st.DrawFn) -> tuple[OverrideSpec, ...]:
    found = []
    specs = draw(
        st.lists(
            st.tuples(st.sampled_from(OVERRIDE_KINDS), st.integers(-180, 60), st.integers(1, 240), st.integers(0, 450)),
            max_size=3,
        )
    )
    for i, (kind, start, length, replicas) in enumerate(specs):
        found.append(
            OverrideSpec(
                id=i,
                kind=kind,
                starts_at=T0 + timedelta(minutes=start),
                ends_at=T0 + timedelta(minutes=start + length),
                replicas=replicas,
                reason="generated",
            )
        )
    return tuple(found)


@st.composite
def inputs(draw: st.DrawFn, *, with_overrides: bool = True) -> EngineInput:
    provisioned, ready_share, service, params, mode, tip_min, flags = draw(
        st.tuples(
            st.integers(0, 320),
            st.floats(0, 1),
            st.sampled_from(SERVICES),
            st.sampled_from(PARAMS),
            st.sampled_from([Mode.ACTIVE, Mode.ACTIVE, Mode.DRY_RUN]),
            st.one_of(st.none(), st.integers(-200, 200)),
            st.tuples(st.booleans(), st.booleans()),
        )
    )
    history = draw(st.lists(st.tuples(st.integers(1, 600), st.integers(0, 320), st.integers(0, 320)), max_size=4))
    recent = tuple(
        PastRecommendation(T0 - timedelta(seconds=age), rec, desired)
        for age, (rec, desired) in sorted({a: (r, d) for a, r, d in history}.items(), reverse=True)
    )
    return EngineInput(
        now=T0,
        service=service,
        params=params,
        provisioned=provisioned,
        ready=round(provisioned * ready_share),
        metrics=draw(metric_windows()),
        mode=mode,
        overrides=draw(overrides()) if with_overrides else (),
        games=() if tip_min is None else (game(T0 + timedelta(minutes=tip_min)),),
        recent=recent,
        last_scale_out_at=T0 - timedelta(seconds=100) if flags[0] else None,
        metrics_missing_since=T0 - timedelta(seconds=900) if flags[1] else None,
    )


def _active(inp: EngineInput, kind: str) -> list[OverrideSpec]:
    return [o for o in inp.overrides if o.kind == kind and o.active_at(inp.now)]


def _pin(inp: EngineInput) -> int | None:
    pins = _active(inp, "pin")
    if not pins:
        return None
    return min(max(pins, key=lambda o: (o.starts_at, str(o.id))).replicas or 0, inp.service.hard_max_replicas)


@PROPERTY
@given(inputs())
def test_the_result_is_within_the_bounds_or_the_pin(inp: EngineInput) -> None:
    result = decide(inp)
    pin = _pin(inp)
    if pin is not None:
        assert result.desired == pin
    else:
        assert inp.service.min_replicas <= result.desired <= inp.service.max_replicas
        if _active(inp, "freeze"):
            spec = inp.service
            assert result.desired == min(max(inp.provisioned, spec.min_replicas), spec.max_replicas)


@PROPERTY
@given(inputs(), st.sampled_from(["empty", "stale", "unavailable"]))
def test_it_never_scales_in_on_missing_or_stale_metrics(inp: EngineInput, how: str) -> None:
    if how == "empty":
        inp = replace(inp, metrics=())
    elif how == "stale":
        inp = replace(inp, metrics=tuple(replace(m, ts=T0 - timedelta(hours=1)) for m in inp.metrics))
    result = decide(inp, metrics_unavailable=how == "unavailable")
    if _pin(inp) is None and inp.provisioned <= inp.service.max_replicas:
        assert result.desired >= inp.provisioned


@PROPERTY
@given(inputs(with_overrides=False))
def test_rate_limits_are_respected(inp: EngineInput) -> None:
    result = decide(inp)
    spec = inp.service
    if not spec.min_replicas <= inp.provisioned <= spec.max_replicas:
        return  # bounds come first; a count outside them moves straight back
    if any(c.name == "fallback_replicas" for c in result.constraints):
        return  # metrics missing too long: the operator's fallback count applies at once
    assert result.desired <= max(scale_up_limit(inp), inp.provisioned)
    assert result.desired >= min(scale_down_limit(inp), inp.provisioned)
    base = inp.provisioned
    assert result.desired - base <= max(inp.params.scale_up_pods, _percent_step(base, inp.params.scale_up_percent))
    assert base - result.desired <= max(inp.params.scale_down_pods, _percent_step(base, inp.params.scale_down_percent))


def _percent_step(base: int, percent: float) -> int:
    """As the HPA rounds a Percent policy, in favour of the change; at least one replica when any is allowed."""
    return max(math.ceil(base * percent / 100), 1) if percent > 0 else 0


@PROPERTY
@given(inputs(), st.integers(0, 450))
def test_an_active_pin_holds_whatever_the_load(inp: EngineInput, replicas: int) -> None:
    pin = OverrideSpec(
        id="pin", kind="pin", starts_at=T0 + timedelta(days=-1), ends_at=T0 + timedelta(days=1), replicas=replicas
    )
    others = tuple(o for o in inp.overrides if o.kind != "pin")
    result = decide(replace(inp, overrides=(*others, pin)))
    assert result.desired == min(replicas, inp.service.hard_max_replicas)


@PROPERTY
@given(inputs(with_overrides=False), overrides())
def test_expired_and_future_overrides_never_apply(inp: EngineInput, generated: tuple[OverrideSpec, ...]) -> None:
    inactive = tuple(
        replace(o, starts_at=T0 - timedelta(days=2), ends_at=T0 - timedelta(seconds=i))
        if i % 2
        else replace(o, starts_at=T0 + timedelta(seconds=i + 1), ends_at=T0 + timedelta(days=1))
        for i, o in enumerate(generated)
    )
    assert decide(replace(inp, overrides=inactive)).desired == decide(inp).desired


@PROPERTY
@given(inputs())
def test_the_same_input_gives_the_same_decision(inp: EngineInput) -> None:
    assert decide(inp).to_dict() == decide(inp).to_dict()


@PROPERTY
@given(inputs(), st.floats(min_value=1.0, max_value=5.0))
def test_more_load_never_yields_fewer_replicas(inp: EngineInput, factor: float) -> None:
    heavier = tuple(
        replace(
            m,
            rps=None if m.rps is None else m.rps * factor,
            utilization=None if m.utilization is None else m.utilization * factor,
            in_flight=None if m.in_flight is None else m.in_flight * factor,
        )
        for m in inp.metrics
    )
    assert decide(replace(inp, metrics=heavier)).desired >= decide(inp).desired
