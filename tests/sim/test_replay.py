"""Replay dynamics (provisioning delay, stop order, observed metrics that never see
the future), determinism, and an independent re-computation of the scores."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from scaling.policy.types import GameSpec, ServiceSpec
from scaling.sim.inputs import service_from_dict
from scaling.sim.replay import Observation, ReplayContext, replay
from scaling.sim.score import score, steps_csv
from scaling.sim.trace import Trace, trace_csv

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 1, 15, 23, 0, tzinfo=UTC)


def _trace(rps: list[float] | np.ndarray, step_s: int = 10) -> Trace:
    return Trace(start=START, step_s=step_s, rps=np.asarray(rps, dtype=np.float64))


def _service(**overrides: float) -> ServiceSpec:
    return service_from_dict(dict(overrides))


class Scripted:
    """Asks for counts from a script keyed by elapsed seconds; records what it saw."""

    name = "scripted"

    def __init__(self, script: dict[float, int]) -> None:
        self.script = script
        self.seen: list[Observation] = []

    def start(self, ctx: ReplayContext) -> None:
        self.ctx = ctx

    def decide(self, obs: Observation) -> int:
        self.seen.append(obs)
        return self.script.get(obs.elapsed_s, obs.provisioned)


def test_new_replicas_serve_only_after_the_provisioning_delay() -> None:
    run = replay(_trace([50.0] * 60), _service(provisioning_delay_s=180), Scripted({30.0: 5}))
    assert run.initial_replicas == 1
    at = {i * 10: (int(p), int(r)) for i, (p, r) in enumerate(zip(run.provisioned, run.ready, strict=True))}
    assert at[20] == (1, 1)
    assert at[30] == (5, 1)  # requested at 30 s: paid for at once
    assert at[200] == (5, 1)
    assert at[210] == (5, 5)  # ready at 30 + 180 s


def test_it_stops_pending_replicas_newest_first_then_ready_ones() -> None:
    script = {0.0: 3, 60.0: 6, 120.0: 4, 300.0: 2}
    run = replay(_trace([50.0] * 60), _service(provisioning_delay_s=100), Scripted(script))
    by_t = {i * 10: (int(p), int(r)) for i, (p, r) in enumerate(zip(run.provisioned, run.ready, strict=True))}
    assert by_t[110] == (6, 3)  # two from t=0 ready, 3 newer pending
    assert by_t[120] == (4, 3)  # two of the newest pending (from t=60) stopped
    assert by_t[160] == (4, 4)  # the remaining one from t=60 becomes ready
    assert by_t[300] == (2, 2)  # ready ones stop at once


def test_the_policy_never_observes_the_future() -> None:
    rps = [100.0] * 30 + [5000.0] * 30  # a jump at 300 s
    policy = Scripted({})
    replay(_trace(rps), _service(metrics_lag_s=60, metrics_window_s=60, max_replicas=60), policy, seed=3)
    for obs in policy.seen:
        if obs.metric is None:
            continue
        assert obs.metric.ts == obs.now - timedelta(seconds=60)
        if obs.elapsed_s < 360:  # the jump is invisible until lag has passed
            assert obs.metric.rps is not None
            assert obs.metric.rps < 200
    late = [o for o in policy.seen if o.elapsed_s >= 420 and o.metric is not None]
    assert late
    assert all(o.metric is not None and (o.metric.rps or 0) > 4000 for o in late)


def test_before_any_complete_window_the_policy_sees_no_metric() -> None:
    policy = Scripted({})
    replay(_trace([10.0] * 20), _service(metrics_lag_s=30), policy)
    assert policy.seen[0].metric is None
    assert policy.seen[1].metric is None  # t=15: nothing ends by −15 s
    assert all(o.metric is not None for o in policy.seen if o.elapsed_s >= 45)


def test_overload_is_reported_as_errors_and_slow_latency() -> None:
    policy = Scripted({})
    replay(_trace([1000.0] * 30), _service(min_replicas=1, max_replicas=1), policy)
    metric = policy.seen[-1].metric
    assert metric is not None
    assert metric.error_rate == 1.0
    assert metric.p99_ms is not None
    assert metric.p99_ms >= 300.0
    assert metric.utilization is not None
    assert metric.utilization > 1.0


def test_observed_noise_is_seeded() -> None:
    first, second, other = Scripted({}), Scripted({}), Scripted({})
    for policy, seed in ((first, 1), (second, 1), (other, 2)):
        replay(_trace([200.0] * 60), _service(), policy, seed=seed)
    rates = [[o.metric.rps if o.metric else None for o in p.seen] for p in (first, second, other)]
    assert rates[0] == rates[1]
    assert rates[0] != rates[2]


def test_scores_follow_the_contract() -> None:
    # 2 minutes; the policy drops to 1 replica for the second minute at 900 rps.
    rps = [900.0] * 12
    run = replay(_trace(rps), _service(provisioning_delay_s=0), Scripted({60.0: 1}))
    scores = score(run)
    assert run.initial_replicas == 10  # n*(900 rps)
    assert run.attainment[:6].tolist() == pytest.approx([0.99937104] * 6, abs=5e-9)
    assert run.attainment[6:].tolist() == [0.0] * 6
    assert scores.attainment == pytest.approx(float(run.attainment[:6].mean()) / 2)
    assert scores.replica_hours == pytest.approx((6 * 10 + 6 * 1) * 10 / 3600)
    assert scores.oracle_replica_hours == pytest.approx(12 * 10 * 10 / 3600)
    assert scores.slo_violation_minutes == 1
    assert scores.scale_events == 1
    assert scores.tipoff_attainment is None


def test_tipoff_attainment_covers_half_an_hour_either_side() -> None:
    rps = [900.0] * (6 * 120)  # two hours
    game = GameSpec("1", START + timedelta(minutes=90), "A", "B")
    script = {float(s): 1 for s in range(0, 3600, 15)} | {float(s): 10 for s in range(3600, 7200, 15)}
    run = replay(_trace(rps), _service(provisioning_delay_s=0), Scripted(script))
    scores = score(run, [game])
    assert scores.tipoff_attainment == pytest.approx(float(run.attainment[6 * 60 :].mean()))


def _write_inputs(tmp_path: Path) -> tuple[Path, Path, Path]:
    t = np.arange(6 * 180)
    rps = 400 + 3000 * np.exp(-0.5 * ((t - 600) / 80.0) ** 2)  # a 3-hour night with a peak
    trace = tmp_path / "trace.csv"
    trace.write_text(trace_csv(_trace(np.round(rps, 3))))
    history = tmp_path / "history.csv"
    history.write_text(trace_csv(Trace(START - timedelta(days=1), 10, np.round(rps * 0.9, 3))))
    schedule = tmp_path / "schedule.csv"
    schedule.write_text(
        "game_id,season_type,tip_utc,away_team,home_team,national_tv\n"
        f"1,Regular Season,{(START + timedelta(minutes=90)):%Y-%m-%dT%H:%M:%SZ},LAL (Lakers),BOS (Celtics),ESPN\n"
        f"2,Regular Season,{(START - timedelta(days=1, minutes=-90)):%Y-%m-%dT%H:%M:%SZ},LAL (Lakers),BOS,ESPN\n"
    )
    return trace, history, schedule


@pytest.mark.parametrize("policy", ["tipoff", "hpa", "target-tracking", "static-peak", "oracle"])
def test_replay_is_byte_identical_across_runs(tmp_path: Path, policy: str) -> None:
    trace, history, schedule = _write_inputs(tmp_path)
    outputs = []
    for attempt in range(2):
        out, summary = tmp_path / f"out{attempt}.csv", tmp_path / f"summary{attempt}.json"
        call_command(
            "replay",
            trace=str(trace),
            history=str(history),
            schedule=str(schedule),
            policy=policy,
            seed=5,
            out=str(out),
            summary=str(summary),
        )
        outputs.append((out.read_bytes(), summary.read_bytes()))
    assert outputs[0] == outputs[1]
    summary_data = json.loads(outputs[0][1])
    assert summary_data["policy"] == policy
    assert summary_data["seed"] == 5
    assert summary_data["service"]["provisioning_delay_s"] == 180.0


def _independent_attainment(ready: int, rps: float, service_time_ms: float, concurrency: int, slo_ms: float) -> float:
    """SERVING_MODEL.md re-derived another way: Erlang C from the Poisson sums in log space."""
    if rps == 0:
        return 1.0
    c = ready * concurrency
    mu = 1000.0 / service_time_ms
    if c == 0 or rps >= c * mu:
        return 0.0
    a = rps / mu
    logs = [k * math.log(a) - math.lgamma(k + 1) for k in range(c)]
    top_log = c * math.log(a) - math.lgamma(c + 1) + math.log(c / (c - a))
    peak = max([*logs, top_log])
    waiting = math.exp(top_log - peak) / (sum(math.exp(v - peak) for v in logs) + math.exp(top_log - peak))
    theta, lat = c * mu - rps, slo_ms / 1000.0
    tail_wait_plus_service = (
        (theta * math.exp(-mu * lat) - mu * math.exp(-theta * lat)) / (theta - mu)
        if abs(theta - mu) > 1e-9
        else (1 + mu * lat) * math.exp(-mu * lat)
    )
    return 1.0 - ((1 - waiting) * math.exp(-mu * lat) + waiting * tail_wait_plus_service)


@pytest.mark.parametrize("policy", ["tipoff", "hpa"])
def test_an_independent_implementation_reproduces_the_scores_from_the_out_file(tmp_path: Path, policy: str) -> None:
    trace, history, schedule = _write_inputs(tmp_path)
    out, summary = tmp_path / "steps.csv", tmp_path / "summary.json"
    call_command(
        "replay",
        trace=str(trace),
        history=str(history),
        schedule=str(schedule),
        policy=policy,
        out=str(out),
        summary=str(summary),
    )
    reported = json.loads(summary.read_text())
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["ts", "rps", "desired", "provisioned", "ready", "attainment"]
    step_s = (datetime.fromisoformat(rows[1]["ts"]) - datetime.fromisoformat(rows[0]["ts"])).total_seconds()
    served = offered = replica_seconds = 0.0
    for row in rows:
        rps = float(row["rps"])
        a = _independent_attainment(int(row["ready"]), rps, 40.0, 4, 300.0)
        assert a == pytest.approx(float(row["attainment"]), abs=1e-9)
        served += rps * step_s * a
        offered += rps * step_s
        replica_seconds += int(row["provisioned"]) * step_s
    assert f"{served / offered:.4g}" == f"{reported['attainment']:.4g}"
    assert f"{replica_seconds / 3600:.4g}" == f"{reported['replica_hours']:.4g}"
    assert f"{replica_seconds / 3600 * 1.0:.4g}" == f"{reported['cost']:.4g}"


def test_the_steps_file_has_one_row_per_step() -> None:
    run = replay(_trace([50.0] * 7), _service(), Scripted({}))
    lines = steps_csv(run).splitlines()
    assert lines[0] == "ts,rps,desired,provisioned,ready,attainment"
    assert len(lines) == 8
    assert lines[1].startswith("2026-01-15T23:00:00Z,50.0,1,1,1,0.99935078")


def test_replay_needs_no_database(tmp_path: Path) -> None:
    trace, _, _ = _write_inputs(tmp_path)
    summary = tmp_path / "s.json"
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://127.0.0.1:1/unreachable",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "TIPOFF_ALLOW_INSECURE_SECRET": "1",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "replay", "--trace", str(trace), "--policy", "hpa", "--summary", str(summary)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "attainment" in result.stdout
    assert json.loads(summary.read_text())["policy"] == "hpa"


def test_a_bad_trace_exits_non_zero_naming_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("ts,rps\n2026-01-15T23:30:00Z,1\n2026-01-15T23:30:10Z,x\n")
    out = tmp_path / "o.csv"
    env = {**os.environ, "DATABASE_URL": "postgres://127.0.0.1:1/unreachable", "TIPOFF_ALLOW_INSECURE_SECRET": "1"}
    result = subprocess.run(
        [sys.executable, "manage.py", "replay", "--trace", str(bad), "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert f"{bad}: line 3: rps 'x' is not a number" in result.stderr
    assert not out.exists()


def _write(path: Path, trace: Trace) -> str:
    path.write_text(trace_csv(trace))
    return str(path)


@pytest.mark.parametrize("history_start", [START, START - timedelta(seconds=10), START + timedelta(days=1)])
def test_a_history_that_does_not_end_before_the_run_is_refused(tmp_path: Path, history_start: datetime) -> None:
    # The policy would learn from what the run is about to show it, breaking the contract's causality.
    trace = _write(tmp_path / "trace.csv", _trace([50.0] * 60))
    history = _write(tmp_path / "history.csv", Trace(history_start, 10, np.full(60, 50.0)))
    with pytest.raises(CommandError, match=r"history\.csv: the history ends at .*; it must end by the start"):
        call_command("replay", trace=trace, history=history)


def test_a_history_that_ends_as_the_run_starts_is_used(tmp_path: Path) -> None:
    trace = _write(tmp_path / "trace.csv", _trace([50.0] * 60))
    history = _write(tmp_path / "history.csv", Trace(START - timedelta(minutes=10), 10, np.full(60, 50.0)))
    call_command("replay", trace=trace, history=history, policy="hpa", stdout=io.StringIO())


@pytest.mark.parametrize(
    ("trace_step", "history_step", "shorter"), [(60, 10, "60 s step of .*trace"), (10, 60, "60 s step of .*history")]
)
def test_a_metrics_window_shorter_than_a_step_is_refused(
    tmp_path: Path, trace_step: int, history_step: int, shorter: str
) -> None:
    trace = _write(tmp_path / "trace.csv", _trace([50.0] * 60, step_s=trace_step))
    history = _write(tmp_path / "history.csv", Trace(START - timedelta(hours=1), history_step, np.full(2, 50.0)))
    service = tmp_path / "svc.json"
    service.write_text('{"metrics_window_s": 30}')
    with pytest.raises(CommandError, match=rf"svc\.json: key 'metrics_window_s': 30 s is shorter than the {shorter}"):
        call_command("replay", trace=trace, history=history, service=str(service))


def test_a_negative_seed_is_refused() -> None:
    with pytest.raises(CommandError, match=r"seed -1: must be 0 or more"):
        call_command("replay", trace="unread.csv", seed=-1)


def test_a_peak_no_fleet_could_serve_is_refused_by_its_line(tmp_path: Path) -> None:
    trace = _write(tmp_path / "trace.csv", _trace([50.0, 1e7, 50.0]))
    service = tmp_path / "svc.json"
    service.write_text('{"concurrency": 1}')
    with pytest.raises(CommandError, match=r"trace\.csv: line 3: no replica count up to 100000 meets the SLO"):
        call_command("replay", trace=trace, service=str(service))


@pytest.mark.parametrize("name", ["service", "policy", "schedule"])
def test_an_input_that_is_not_utf8_is_named(tmp_path: Path, name: str) -> None:
    trace = _write(tmp_path / "trace.csv", _trace([50.0] * 6))
    bad = tmp_path / f"{name}.bin"
    bad.write_bytes(b"\xff\xfe{}")
    with pytest.raises(CommandError, match=rf"{name}\.bin: not UTF-8 text"):
        call_command("replay", trace=trace, **{name: str(bad)})


def test_a_schedule_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    trace, _, schedule = _write_inputs(tmp_path)
    schedule.write_text(schedule.read_text(), encoding="utf-8-sig")
    summary = tmp_path / "s.json"
    call_command(
        "replay", trace=str(trace), schedule=str(schedule), policy="hpa", summary=str(summary), stdout=io.StringIO()
    )
    assert json.loads(summary.read_text())["tipoff_attainment"] is not None


def test_an_output_that_cannot_be_written_fails_before_any_is_written(tmp_path: Path) -> None:
    trace = _write(tmp_path / "trace.csv", _trace([50.0] * 6))
    out, summary = tmp_path / "steps.csv", tmp_path / "taken"
    summary.mkdir()
    with pytest.raises(CommandError, match=r"--summary .*taken: is a directory"):
        call_command("replay", trace=trace, out=str(out), summary=str(summary))
    assert not out.exists()


def test_the_outputs_are_written_as_the_umask_allows(tmp_path: Path) -> None:
    trace = _write(tmp_path / "trace.csv", _trace([50.0] * 6))
    out = tmp_path / "steps.csv"
    previous = os.umask(0o027)
    try:
        call_command("replay", trace=trace, out=str(out), policy="hpa", stdout=io.StringIO())
    finally:
        os.umask(previous)
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    out.chmod(0o604)
    call_command("replay", trace=trace, out=str(out), policy="hpa", stdout=io.StringIO())
    assert stat.S_IMODE(out.stat().st_mode) == 0o604  # a file written over keeps its mode
