"""A causal reference policy told how the benchmark's traffic is made, but not what was drawn for tonight.

The benchmark asks whether a causal policy can meet the SLO target at a cost target; the oracle and the
foresight bound know the whole trace, so they cannot answer that. This reference can: it is told the trace
generator's model (`gentrace`), which no real policy has, and learns everything the generator drew as a
causal policy would have to, from the metric window as the replay shows it.

Told:
  - the diurnal baseline and each game's shape family: tip-off, tier weight, ramp, surges, and the
    close-finish and overtime variants;
  - the laws of the draws: the interest's log-normal prior, the noise's AR(1);
  - each unscheduled spike from its onset (its hold and fade included), none before.

Not told, and so learned or planned for:
  - each game's interest: an extended Kalman filter over the live games' interests and the noise's log
    (state), fed the metric window's mean each tick;
  - whether a game finishes close: unknown until its last 15 minutes of regulation begin (the climb's
    start), and planned for as the worse of the two until then;
  - overtime: unknown until regulation ends, planned for as the worst of none, one or two until then;
  - the noise to come: the filter's reading, shrunk by ρ per minute ahead, with the variance that leaves.

At each tick it asks for n* of the highest mean + z·sd of demand from now until replicas it asks for could
serve, so it never lets go of replicas it needs before new ones arrive. The fleet follows the replay's
dynamics (ready a delay after asked for, stopped at once). z steps through REFERENCE_Z until attainment
reaches the SLO target. Not a bound: a cleverer causal policy could do better. It shows what knowing the
model is worth, and so how much of a policy's cost is its model of demand rather than causality.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scaling.policy.types import ServiceSpec
from scaling.sim.gentrace import (
    NOISE_CORRELATION,
    SHAPE_AFTER_MIN,
    SHAPE_BEFORE_MIN,
    GameDraw,
    Generated,
    GenParams,
    Spike,
    diurnal,
    expected_game_shape,
    game_shape,
    spike_factor,
)
from scaling.sim.serving import ServingModel, attainment_array, oracle_array

FloatArray = npt.NDArray[np.float64]

REFERENCE_Z = tuple(k / 4 for k in range(33))  # headroom in standard deviations of the forecast, 0 to 8
CLOSE_FINISH_WINDOW_MIN = 15.0  # the close-finish climb fills the last 15 minutes of regulation
OBSERVATION_SD = 0.01  # relative: what the window means' linearisation leaves unexplained
OVERTIME_MAX = 2


@dataclass(frozen=True)
class Powers:
    """What the reference knows or learns. The gap analysis takes one away, or weakens it, at a time: what
    each is worth is what the reference pays without it."""

    reveal: bool = True  # a game's finish shows as it happens (else its worst is planned for to its end) ...
    reveal_delay_s: float = 0.0  # ... this long after it begins (about when a metric window could tell it)
    # A close finish shows as it climbs; else only with the overtime (or none) when regulation ends, as a
    # policy that cannot tell one game's climb from the rest of the traffic must plan for it.
    close_reveal: bool = True
    # Each finish's shape (close, overtime) is known; else every game is its average over the finishes the
    # generator draws (`gentrace.expected_game_shape`), planned and read from the window so.
    finishes: bool = True
    learn_interests: bool = True  # each game's interest is learned from the window (else the prior's)


ALL_POWERS = Powers()


@dataclass(frozen=True)
class _Game:
    lo: int  # steps [lo, hi) of the trace the game's shape covers
    hi: int
    scale: float  # rps at shape 1.0 and interest 1
    true: FloatArray  # its shape as drawn: what the metric window shows once it has happened
    unrevealed: FloatArray  # the worst of every close finish and overtime it could still have
    close_known: FloatArray  # the worst of every overtime, its close finish known
    close_at: float  # epoch s its close finish (or not) shows
    overtime_at: float  # epoch s its overtime (or not) shows

    def plan(self, now: float) -> FloatArray:
        """The shape to plan on at epoch `now`: the worst of what it could still turn out to be."""
        if now >= self.overtime_at:
            return self.true
        return self.close_known if now >= self.close_at else self.unrevealed

    def rps(self, shape: FloatArray, lo: int, hi: int) -> FloatArray:
        """`shape` × scale over the trace's steps [lo, hi): zero outside the game's."""
        out = np.zeros(hi - lo)
        a, b = max(lo, self.lo), min(hi, self.hi)
        if b > a:
            out[a - lo : b - lo] = self.scale * shape[a - self.lo : b - self.lo]
        return out


def _games(draws: Sequence[GameDraw], params: GenParams, epoch: FloatArray, powers: Powers) -> list[_Game]:
    """Each game the trace reaches, with its shapes and when its finish shows to a reference with `powers`."""
    t0, step, n = float(epoch[0]), float(epoch[1] - epoch[0]), len(epoch)
    out = []
    for d in draws:
        tip = d.game.tip_utc.timestamp()
        lo = max(0, math.floor((tip - SHAPE_BEFORE_MIN * 60 - t0) / step))
        hi = min(n, math.ceil((tip + SHAPE_AFTER_MIN * 60 - t0) / step))
        if hi <= lo or d.game.tbd:
            continue
        m = (epoch[lo:hi] - tip) / 60.0
        overtime_at = tip + params.regulation_min * 60.0 + powers.reveal_delay_s
        close_at = tip + (params.regulation_min - CLOSE_FINISH_WINDOW_MIN) * 60.0 + powers.reveal_delay_s

        def worst(closes: tuple[bool, ...], m: FloatArray = m) -> FloatArray:
            shapes = [
                game_shape(m, params, close_finish=c, overtimes=k) for c in closes for k in range(OVERTIME_MAX + 1)
            ]
            highest: FloatArray = np.max(shapes, axis=0)
            return highest

        if not powers.finishes:
            average = expected_game_shape(m, params)
            out.append(_Game(lo, hi, d.tier_rps(params), average, average, average, close_at, overtime_at))
            continue
        out.append(
            _Game(
                lo=lo,
                hi=hi,
                scale=d.tier_rps(params),
                true=game_shape(m, params, close_finish=d.close_finish, overtimes=d.overtimes),
                unrevealed=worst((False, True)),
                close_known=worst((d.close_finish,)),
                close_at=close_at if powers.close_reveal else overtime_at,
                overtime_at=overtime_at,
            )
        )
    return out


class _Filter:
    """Extended Kalman filter over (interest of each live game ..., log noise at the window's middle).

    With `learn_interests` off, each game's interest stays at the prior's mean and uncertainty (for the
    gap analysis: what learning them is worth); only the noise is read."""

    def __init__(self, params: GenParams, *, learn_interests: bool = True) -> None:
        self.learn_interests = learn_interests
        s2 = params.interest_sigma**2
        self.prior = (params.mean_interest, (math.exp(s2) - 1.0) * math.exp(s2))  # log-normal mean, variance
        self.sigma = params.noise_sigma
        self.live: list[int] = []
        self.x = np.zeros(1)
        self.p = np.full((1, 1), params.noise_sigma**2)
        self.at: float | None = None

    def track(self, games: list[int]) -> None:
        """Carry the state over to `games` (sorted): new ones start from the prior, gone ones are dropped."""
        if games == self.live:
            return
        keep = {g: i for i, g in enumerate(self.live)}
        old = [keep.get(g, -1) for g in games] + [len(self.live)]
        x = np.array([self.x[i] if i >= 0 else self.prior[0] for i in old])
        p = np.zeros((len(old), len(old)))
        for a, i in enumerate(old):
            for b, j in enumerate(old):
                if i >= 0 and j >= 0:
                    p[a, b] = self.p[i, j]
            if i < 0:
                p[a, a] = self.prior[1]
        self.live, self.x, self.p = games, x, p

    def advance(self, at: float) -> None:
        """Move the noise state to epoch `at`: AR(1) with correlation NOISE_CORRELATION per minute."""
        if self.at is not None:
            r = NOISE_CORRELATION ** ((at - self.at) / 60.0)
            self.x[-1] *= r
            self.p[-1, :] *= r
            self.p[:, -1] *= r
            self.p[-1, -1] += self.sigma**2 * (1.0 - r * r)
        self.at = at

    def update(self, observed: float, base: float, loads: FloatArray, spikes: float) -> None:
        """One observation: the window's mean rps, its baseline, each live game's rps at interest 1, and the
        known spikes' multiplier over it."""
        noise = math.exp(self.x[-1]) * spikes
        predicted = (base + float(loads @ self.x[:-1])) * noise
        h = np.append(loads * noise, predicted)
        s = float(h @ self.p @ h) + (OBSERVATION_SD * predicted) ** 2
        if s <= 0.0:
            return
        gain = self.p @ h / s
        if not self.learn_interests:
            gain[:-1] = 0.0
        self.x = self.x + gain * (observed - predicted)
        self.p = self.p - np.outer(gain, h @ self.p)

    def forecast(
        self, base: FloatArray, loads: FloatArray, spikes: FloatArray, ahead_min: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """Mean and sd of demand at future steps: `loads` is (live games × steps) rps at interest 1,
        `ahead_min` each step's minutes past the state's time."""
        r = NOISE_CORRELATION**ahead_min
        noise = np.exp(self.x[-1] * r) * spikes
        level = base + self.x[:-1] @ loads
        mean = level * noise
        grad = np.vstack([loads * noise, mean * r])  # d mean / d state, per step
        var = np.einsum("is,ij,js->s", grad, self.p, grad) + mean**2 * self.sigma**2 * (1.0 - r * r)
        return mean, np.sqrt(np.maximum(var, 0.0))


def _known_spikes(spikes: Sequence[Spike], epoch: FloatArray, now: float, multiple: float) -> FloatArray:
    factor = np.ones(len(epoch))
    for s in spikes:
        if s.onset <= now:
            factor *= spike_factor((epoch - s.onset) / 60.0, (s.hold_end - s.onset) / 60.0, multiple)
    return factor


def plans(
    generated: Generated,
    params: GenParams,
    service: ServiceSpec,
    powers: Powers = ALL_POWERS,
) -> tuple[FloatArray, FloatArray]:
    """Per tick, the mean and sd of demand the reference expects at each step from the tick until replicas
    asked for then could serve: two (ticks × steps) arrays, zero-padded past the trace's end.

    With fewer `powers` (the gap analysis's ablations), it plans as a reference without them would."""
    trace = generated.trace
    rps, step, n = trace.rps, float(trace.step_s), trace.steps
    epoch = trace.start_epoch_s + step * np.arange(n, dtype=np.float64)
    base = params.base_rps * diurnal(epoch, params.weekend_factor)
    games = _games(generated.draws, params, epoch, powers)
    lag, window = service.metrics_lag_s, service.metrics_window_s
    ahead = int((service.provisioning_delay_s + service.tick_s) // step) + 1
    ticks = np.arange(0.0, n * step, service.tick_s)
    means = np.zeros((len(ticks), ahead))
    sds = np.zeros((len(ticks), ahead))
    cumulative = np.concatenate([[0.0], np.cumsum(rps)])
    flt = _Filter(params, learn_interests=powers.learn_interests)
    for j, t in enumerate(ticks.tolist()):
        now = trace.start_epoch_s + t
        lo, hi = max(int((t - lag - window) // step), 0), min(int((t - lag) // step), n)
        a, b = int(t // step), min(int(t // step) + ahead, n)
        flt.track([k for k, g in enumerate(games) if g.lo < b and g.hi > min(lo, a)])
        observed_at = now - lag - window / 2.0  # the metric window's middle
        flt.advance(observed_at)
        if hi > lo:
            loads = np.array([games[k].rps(games[k].true, lo, hi).mean() for k in flt.live])
            spikes = float(_known_spikes(generated.spikes, epoch[lo:hi], now, params.spike_multiple).mean())
            flt.update(float(cumulative[hi] - cumulative[lo]) / (hi - lo), float(base[lo:hi].mean()), loads, spikes)
        shapes = [games[k].plan(now) if powers.reveal else games[k].unrevealed for k in flt.live]
        future = np.array([games[k].rps(shape, a, b) for k, shape in zip(flt.live, shapes, strict=True)])
        future = future.reshape(len(flt.live), b - a)
        spikes_ahead = _known_spikes(generated.spikes, epoch[a:b], now, params.spike_multiple)
        ahead_min = (epoch[a:b] - observed_at) / 60.0
        mean, sd = flt.forecast(base[a:b], future, spikes_ahead, ahead_min)
        means[j, : b - a], sds[j, : b - a] = mean, sd
    return means, sds


def model_reference(
    generated: Generated,
    params: GenParams,
    service: ServiceSpec,
    model: ServingModel,
    target: float | None = None,
    *,
    powers: Powers = ALL_POWERS,
) -> dict[str, float] | None:
    """What the reference pays to reach `target` attainment (the SLO target unless given): {z, attainment,
    cost_ratio} at the first z in REFERENCE_Z that reaches it, None if none does. `params` are the
    generator's, as the trace was drawn with them; `powers` as for `plans`."""
    goal = service.slo_target if target is None else target
    trace = generated.trace
    rps, step, n = trace.rps, trace.step_s, trace.steps
    means, sds = plans(generated, params, service, powers)
    nstar = oracle_array(rps, model, service.min_replicas)
    grid = np.geomspace(1e-3, max(float(rps.max()), 1.0) * 10.0, 6000)
    n_grid = oracle_array(grid, model, service.min_replicas)
    at_tick = np.minimum(np.arange(n) * step // service.tick_s, len(means) - 1).astype(np.int64)
    window = round(service.provisioning_delay_s / step) + 1
    for z in REFERENCE_Z:
        wanted = (means + z * sds).max(axis=1)
        asked = n_grid[np.minimum(np.searchsorted(grid, wanted), grid.size - 1)]
        provisioned = asked[at_tick]
        padded = np.concatenate([np.full(window - 1, provisioned[0]), provisioned])
        ready = np.lib.stride_tricks.sliding_window_view(padded, window).min(axis=1)
        attainment = float((rps * attainment_array(ready, rps, model)).sum() / rps.sum())
        if attainment >= goal:
            return {"z": z, "attainment": attainment, "cost_ratio": float(provisioned.sum() / nstar.sum())}
    return None
