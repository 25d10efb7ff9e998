"""Reference values of SERVING_MODEL.md, reproduced to 6 decimals."""

from __future__ import annotations

import math

import pytest

from scaling.sim.serving import ServingModel, attainment, erlang_c, oracle_replicas

MODEL = ServingModel()


@pytest.mark.parametrize(
    ("ready", "rps", "expected"),
    [
        (1, 50, 0.99935078),
        (2, 150, 0.99924958),
        (10, 900, 0.99937104),
        (25, 2400, 0.99933864),
        (50, 4900, 0.99931936),
        (200, 19000, 0.99944553),
        (3, 300, 0.0),
    ],
)
def test_it_reproduces_the_reference_attainment(ready: int, rps: float, expected: float) -> None:
    assert attainment(ready, rps, MODEL) == pytest.approx(expected, abs=5e-9)


@pytest.mark.parametrize(("rps", "expected"), [(0, 1), (100, 2), (1000, 11), (5000, 51), (20000, 201)])
def test_it_finds_the_reference_oracle_count(rps: float, expected: int) -> None:
    assert oracle_replicas(rps, MODEL) == expected


def test_the_model_ceiling_is_the_service_time_tail() -> None:
    assert 1 - math.exp(-MODEL.mu * 0.3) == pytest.approx(0.99944692, abs=5e-9)


def test_erlang_c_matches_a_hand_computed_value() -> None:
    # c = 2, a = 1: P0 = 1/3, C = a^c/(c! (1 - a/c)) * P0 = 1/3.
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)


def test_erlang_c_is_stable_for_thousands_of_servers() -> None:
    value = erlang_c(5000, 4900.0)
    assert 0.0 < value < 1.0
