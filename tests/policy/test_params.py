"""PolicyParams.validate: the one check of a policy the engine, the policy form and the API share (no database)."""

from __future__ import annotations

from typing import Any

import pytest

from scaling.policy import PolicyParams
from scaling.policy.types import PolicyParamsError, param_range

NO_SIGNAL = {
    "model_sizing": False,
    "slo_guard": False,
    "prewarm": False,
    "target_utilization": 0,
    "target_rps_per_replica": 0,
    "target_in_flight_per_replica": 0,
}


def refusal(params: dict[str, Any]) -> PolicyParamsError:
    with pytest.raises(PolicyParamsError) as caught:
        PolicyParams.from_dict(params)
    return caught.value


def test_a_policy_with_no_scaling_signal_is_refused_naming_the_fields() -> None:
    # Accepted, it held at whatever ran: "load within tolerance of target", with no rule at all.
    exc = refusal(NO_SIGNAL)
    assert exc.field == "model_sizing"
    for name in NO_SIGNAL:
        assert name in str(exc)


@pytest.mark.parametrize(
    "signal",
    [
        {"model_sizing": True},
        {"slo_guard": True},
        {"prewarm": True},
        {"target_utilization": 0.7},
        {"target_rps_per_replica": 50},
        {"target_in_flight_per_replica": 3},
    ],
)
def test_any_one_scaling_signal_is_enough(signal: dict[str, Any]) -> None:
    PolicyParams.from_dict(NO_SIGNAL | signal)


def test_a_policy_that_can_never_scale_out_is_refused_naming_both_rate_limits() -> None:
    exc = refusal({"scale_up_pods": 0, "scale_up_percent": 0})
    assert exc.field == "scale_up_pods"
    assert "scale_up_pods" in str(exc) and "scale_up_percent" in str(exc) and "never scale out" in str(exc)
    PolicyParams.from_dict({"scale_up_pods": 0, "scale_up_percent": 10})
    PolicyParams.from_dict({"scale_up_pods": 1, "scale_up_percent": 0})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        # A correction of 0 multiplies tonight's forecast by nothing: pre-warm asks for no replicas at tip-off.
        ("forecast_correction_min", 0.0),
        ("forecast_correction_max", 0.0),
        ("forecast_correction_max", 0.5),
        # At or under 1 × the ready count, a fleet sized just right panics every tick and scales out by the
        # panic headroom; a threshold of 10^300 is a typo.
        ("panic_threshold", 0.5),
        ("panic_threshold", 1.0),
        ("panic_threshold", 1e300),
        ("panic_surge_multiple", 1e300),
        ("panic_surge_multiple", 0.5),
        ("forecast_uncertainty", 1e300),
    ],
)
def test_a_nonsense_value_is_out_of_its_documented_range(field: str, value: float) -> None:
    exc = refusal({field: value})
    assert exc.field == field
    assert f"must be {param_range(field).describe()}" in str(exc)


def test_the_bounds_are_documented_and_finite() -> None:
    for name in ("forecast_correction_min", "forecast_correction_max", "panic_surge_multiple", "forecast_uncertainty"):
        allowed = param_range(name)
        assert allowed.low is not None and allowed.high is not None, name
    assert param_range("panic_threshold").describe() == "0 (off) or in [1.1, 10]"
    assert param_range("forecast_correction_min").describe() == "in [0.1, 1]"


def test_the_switches_stay_switches_and_the_defaults_stay_valid() -> None:
    PolicyParams.from_dict({})
    # 0 switches panic and the surge multiple off, as the engine reads them.
    PolicyParams.from_dict({"panic_threshold": 0, "panic_surge_multiple": 0, "forecast_uncertainty": 0})
    PolicyParams.from_dict({"forecast_correction_min": 1, "forecast_correction_max": 1})


@pytest.mark.parametrize(
    ("stored", "field", "message"),
    [
        ({"tolerance": 0.9, "tolerence": 0.2}, "tolerence", "unknown policy parameter(s): tolerence"),
        (["tolerance"], "policy", "a policy is a mapping of parameters to values, not a list"),
    ],
)
def test_a_stored_policy_the_engine_cannot_read_is_refused_naming_what_is_wrong(
    stored: Any, field: str, message: str
) -> None:
    # Every refusal names its field: a tick held on a stored policy (POLICY_INVALID) says which one to fix.
    exc = refusal(stored)
    assert (exc.field, str(exc)) == (field, message)
