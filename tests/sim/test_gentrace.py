"""The trace generator: seeded, schedule-shaped, with broadcast tiers and spikes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from scaling.policy.types import GameSpec
from scaling.sim.gentrace import GenParams, diurnal, game_shape, generate, generate_drawn
from scaling.sim.trace import read_trace, trace_csv

ROOT = Path(__file__).resolve().parents[2]
NIGHT = datetime(2026, 1, 15, 22, 0, tzinfo=UTC)
QUIET = GenParams(noise_sigma=0.0, interest_sigma=0.0, close_finish_p=0.0, overtime_p=0.0)


def test_the_same_seed_gives_the_same_trace() -> None:
    games = (GameSpec("1", NIGHT + timedelta(hours=2), "A", "B"),)
    first = generate(NIGHT, 0.5, games=games, seed=4)
    again = generate(NIGHT, 0.5, games=games, seed=4)
    other = generate(NIGHT, 0.5, games=games, seed=5)
    assert trace_csv(first) == trace_csv(again)
    assert trace_csv(first) != trace_csv(other)


def test_a_national_game_draws_several_times_a_regional_one() -> None:
    tip = NIGHT + timedelta(hours=2)
    base = generate(NIGHT, 0.5, params=QUIET)
    regional = generate(NIGHT, 0.5, games=(GameSpec("1", tip, "A", "B", "NBA TV"),), params=QUIET)
    national = generate(NIGHT, 0.5, games=(GameSpec("1", tip, "A", "B", "ESPN"),), params=QUIET)
    extra_regional = float((regional.rps - base.rps).sum())
    extra_national = float((national.rps - base.rps).sum())
    assert extra_national / extra_regional == pytest.approx(QUIET.national_multiple, rel=1e-3)


def test_the_game_shape_ramps_before_tip_and_surges_at_the_breaks() -> None:
    m = np.arange(-120.0, 240.0, 0.5)
    shape = game_shape(m, QUIET, close_finish=False, overtimes=0)
    at = dict(zip(m.tolist(), shape.tolist(), strict=True))
    assert at[-100.0] == 0.0
    assert at[-60.0] < at[-30.0] < at[-1.0] < 0.55  # the pre-tip ramp
    assert at[1.0] > 1.4  # tip-off: the in-game level and the tip-off surge within a minute
    assert at[25.0] == pytest.approx(1.0, abs=0.01)  # in-game level
    assert at[33.0] > 1.4  # end of Q1
    assert at[67.0] > 1.8  # halftime
    assert at[114.0] > 1.4  # end of Q3
    assert at[200.0] < 0.1  # fading after the game


def test_close_finishes_and_overtime_raise_and_extend_the_end() -> None:
    m = np.arange(100.0, 200.0, 0.5)
    plain = game_shape(m, QUIET, close_finish=False, overtimes=0)
    close = game_shape(m, QUIET, close_finish=True, overtimes=0)
    overtime = game_shape(m, QUIET, close_finish=False, overtimes=1)
    i_late = int(np.searchsorted(m, 138.0))
    i_ot = int(np.searchsorted(m, 150.0))
    assert close[i_late] > plain[i_late] + 0.8
    assert overtime[i_ot] == pytest.approx(1.6, abs=0.01)
    assert plain[i_ot] < 0.5


def test_an_unscheduled_spike_triples_traffic_within_a_minute() -> None:
    params = GenParams(noise_sigma=0.0, spikes=1, use_schedule=False)
    calm = generate(NIGHT, 1.0, params=GenParams(noise_sigma=0.0, use_schedule=False), step_s=10)
    spiky = generate(NIGHT, 1.0, params=params, step_s=10)
    ratio = spiky.rps / calm.rps
    assert ratio.max() == pytest.approx(3.0, rel=1e-3)
    first = int(np.argmax(ratio > 1.001))
    assert ratio[first + 6] == pytest.approx(3.0, rel=1e-3)  # full height 60 s after it starts


def test_without_a_schedule_the_trace_is_diurnal() -> None:
    trace = generate(NIGHT - timedelta(hours=22), 1.0, params=GenParams(noise_sigma=0.0, use_schedule=False))
    hours_et = [((trace.start + timedelta(seconds=10 * i)).hour - 5) % 24 for i in range(trace.steps)]
    evening = trace.rps[[h == 20 for h in hours_et]].mean()
    night = trace.rps[[h == 4 for h in hours_et]].mean()
    assert evening > 2.5 * night


def test_the_command_writes_a_valid_trace_from_the_schedule(tmp_path: Path) -> None:
    out = tmp_path / "week.csv"
    call_command(
        "gentrace",
        start="2025-12-25T05:00:00Z",
        days=1,
        step=15,
        schedule=str(ROOT / "data" / "nba_2025_26_schedule.csv"),
        seed=1,
        out=str(out),
    )
    trace = read_trace(out)
    assert trace.steps == 86400 // 15
    assert trace.step_s == 15
    assert float(trace.rps.max()) > 5 * float(trace.rps.min())


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--days", "nan", r"--days nan: must be above 0 and at most 366"),
        ("--days", "inf", r"--days inf: must be above 0"),
        ("--days", "0.00001", r"--days 1e-05 holds fewer than two 10 s steps"),
        ("--base-rps", "nan", r"--base-rps nan: must be a finite number >= 0"),
        ("--base-rps", "-1", r"--base-rps -1.0: must be"),
        ("--national-multiple", "-4", r"--national-multiple -4.0: must be"),
        ("--spikes", "-1", r"--spikes -1: must be"),
        ("--seed", "-1", r"--seed -1: must be"),
        ("--base-rps", "1e308", r"the rates overflow"),
        ("--start", "9999-12-31", r"runs past the year 9999"),
        ("--out", "/nonexistent/t.csv", r"--out /nonexistent/t.csv: directory does not exist"),
    ],
)
def test_the_command_refuses_what_would_not_make_a_valid_trace(
    tmp_path: Path, option: str, value: str, message: str
) -> None:
    out = tmp_path / "t.csv"
    given = {"--start": "2026-01-12T05:00:00Z", "--days": "1", "--out": str(out), option: value}
    with pytest.raises(CommandError, match=message):
        call_command("gentrace", *[part for pair in given.items() for part in pair])
    assert list(tmp_path.iterdir()) == []


def test_it_reports_where_each_spike_starts_and_holds() -> None:
    params = GenParams(noise_sigma=0.0, use_schedule=False, spikes=2)
    drawn = generate_drawn(NIGHT, 1.0, params=params, step_s=10)
    trace, spikes = drawn.trace, drawn.spikes
    assert len(spikes) == 2
    calm = generate(NIGHT, 1.0, params=replace(params, spikes=0), step_s=10)
    for spike in spikes:
        assert 5 * 60 <= spike.hold_end - spike.onset <= 20 * 60
        # One minute after the onset the spike has tripled the calm traffic, and it holds until hold_end.
        i = int((spike.onset + 70 - trace.start_epoch_s) // 10)
        j = int((spike.hold_end - trace.start_epoch_s) // 10) - 1
        for k in (i, j):
            if k < trace.steps:
                assert trace.rps[k] == pytest.approx(3 * calm.rps[k], rel=0.01)
    assert generate(NIGHT, 1.0, params=params, step_s=10).rps.tolist() == trace.rps.tolist()


def test_its_draws_rebuild_the_trace_it_drew() -> None:
    """`generate_drawn` reports each game's interest, close finish and overtimes: without noise, the
    baseline plus each game's shape at its draw is the trace, and the trace is the one `generate` gives."""
    tips = (NIGHT + timedelta(hours=1), NIGHT + timedelta(hours=2, minutes=30))
    games = [GameSpec("1", tips[0], "A", "B", "ESPN"), GameSpec("2", tips[1], "C", "D")]
    params = GenParams(noise_sigma=0.0, close_finish_p=0.5, overtime_p=0.5)
    drawn = generate_drawn(NIGHT, 0.5, games=games, params=params, seed=3, step_s=10)
    assert drawn.trace.rps.tolist() == generate(NIGHT, 0.5, games=games, params=params, seed=3, step_s=10).rps.tolist()
    assert [d.game.game_id for d in drawn.draws] == ["1", "2"]
    assert len({d.interest for d in drawn.draws}) == 2
    epoch = drawn.trace.start_epoch_s + 10.0 * np.arange(drawn.trace.steps, dtype=np.float64)
    rebuilt = params.base_rps * diurnal(epoch, params.weekend_factor)
    for d in drawn.draws:
        m = (epoch - d.game.tip_utc.timestamp()) / 60.0
        inside = (m >= -120) & (m < 260)
        shape = game_shape(m, params, close_finish=d.close_finish, overtimes=d.overtimes)
        rebuilt += np.where(inside, d.tier_rps(params) * d.interest * shape, 0.0)
    assert drawn.trace.rps == pytest.approx(rebuilt, abs=2e-3)
    assert drawn.draws[0].tier_rps(params) == params.national_multiple * drawn.draws[1].tier_rps(params)
