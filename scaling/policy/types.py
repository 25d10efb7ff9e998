"""Plain data in and out of the decision engine. No Django, no boto3."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scaling.policy.forecast import Forecaster


class Mode(StrEnum):
    ACTIVE = "active"
    DRY_RUN = "dry_run"
    PAUSED = "paused"


class Reason(StrEnum):
    """Why the decision came out as it did (one per decision)."""

    SCALED_OUT = "SCALED_OUT"
    SCALED_IN = "SCALED_IN"
    WITHIN_TOLERANCE = "WITHIN_TOLERANCE"
    STABILIZING_SCALE_IN = "STABILIZING_SCALE_IN"
    STABILIZING_SCALE_OUT = "STABILIZING_SCALE_OUT"
    AT_MAX = "AT_MAX"
    AT_MIN = "AT_MIN"
    RATE_LIMITED = "RATE_LIMITED"
    COOLDOWN = "COOLDOWN"
    OVERRIDE_ACTIVE = "OVERRIDE_ACTIVE"
    METRICS_STALE = "METRICS_STALE"
    METRICS_UNAVAILABLE = "METRICS_UNAVAILABLE"
    ACTUATOR_UNAVAILABLE = "ACTUATOR_UNAVAILABLE"  # held: the fleet's status could not be read from the actuator
    PAUSED = "PAUSED"
    DRY_RUN = "DRY_RUN"
    NO_CHANGE = "NO_CHANGE"
    PANICKING = "PANICKING"  # held: panic keeps the count while a surge lasts
    SLO_BREACHED = "SLO_BREACHED"  # held: the SLO is breached, so nothing may go
    # held: the stored policy is one the engine refuses (a parameter outside its range, saved before the range
    # narrowed), so no rule can run; the count provisioned stays until a valid policy is saved
    POLICY_INVALID = "POLICY_INVALID"


@dataclass(frozen=True)
class ServiceSpec:
    """A service's bounds and serving model (SERVING_MODEL.md keys)."""

    min_replicas: int = 1
    max_replicas: int = 500
    hard_max_replicas: int = 500
    service_time_ms: float = 40.0
    concurrency: int = 4
    provisioning_delay_s: float = 180.0
    slo_latency_ms: float = 300.0
    slo_target: float = 0.999
    tick_s: float = 15.0
    metrics_window_s: float = 60.0
    metrics_lag_s: float = 0.0
    price_per_replica_hour: float = 1.0


@dataclass(frozen=True)
class Range:
    """A closed or half-open numeric interval, described the way the error message reads; `off` allows 0 as
    well (a target of 0 switches its rule off); `note` adds a limit that depends on the service (checked by
    `service_problems`)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    off: bool = False
    note: str = ""

    def contains(self, value: float) -> bool:
        if self.off and value == 0:
            return True
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (self.high is not None and (value >= self.high if self.high_open else value > self.high))

    def describe(self) -> str:
        if self.high is None:
            text = f"{'greater than' if self.low_open else 'at least'} {self.low:g}"
        elif self.low is None:
            text = f"{'less than' if self.high_open else 'at most'} {self.high:g}"
        else:
            text = f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        if self.off:
            text = f"0 (off) or {text}"
        return f"{text}, {self.note}" if self.note else text


# The documented range of each parameter: the one table the engine (PolicyParams.validate), the policy form and
# the API check against and the policy page's Allowed column shows. A window, period or delay (named *_s) lasts
# at most a day, anything else not listed is a count or ratio ≥ 0. Upper limits past anything sensible are typos
# (a pod count of 10^12); they also keep the engine's arithmetic in range: a window of a billion seconds
# overflows the datetimes it is subtracted from, and a target near 0 (other than 0, off) or a huge headroom asks
# for more replicas than a count can hold.
DAY_S = 86_400
NON_NEGATIVE = Range(0)
UP_TO_A_DAY = Range(0, DAY_S)
HEADROOM = Range(0, 10)
# No replica serves 100,000 requests a second (or holds that many in flight); a larger target is a typo.
PER_REPLICA_TARGET = Range(0.01, 100_000, off=True)
# A replica count: no service runs more (the service form's own limit on its bounds).
REPLICAS = Range(0, 10_000)
PARAM_RANGES: dict[str, Range] = {
    "target_utilization": Range(0.01, 1, off=True),
    "target_rps_per_replica": PER_REPLICA_TARGET,
    "target_in_flight_per_replica": PER_REPLICA_TARGET,
    "tolerance": Range(0, 0.5),
    "sizing_target": Range(0, 1, low_open=True, high_open=True, note="at least the service's SLO target"),
    "low_count_replicas": REPLICAS,
    "forecast_trend": Range(0, 1),
    "scale_up_pods": REPLICAS,
    "scale_up_percent": Range(0, 10_000),
    "scale_down_pods": REPLICAS,
    "scale_down_percent": Range(0, 100),
    "scale_up_period_s": Range(0, DAY_S, low_open=True),
    "scale_down_period_s": Range(0, DAY_S, low_open=True),
    "stabilization_per_delay": Range(0, 2),
    "reactive_headroom": HEADROOM,
    "panic_headroom": HEADROOM,
    "forecast_headroom": HEADROOM,
    "cold_start_headroom": HEADROOM,
    "fallback_replicas": Range(0, 10_000, note="at most the service's maximum"),
    # Panic when the short-window rate needs this many times the ready count. At 1 or under, a fleet sized just
    # right (needed = ready) panics every tick and scales out by the panic headroom each time; Knative's panic
    # threshold, the model, takes 110 % to 1000 %. 0 switches panic off.
    "panic_threshold": Range(1.1, 10, off=True),
    # A multiple of the rate before a surge: under 1 it asks for less than ran before it (no sizing at all);
    # breaking news triples traffic, and 10 × is past anything a surge needs. 0 switches it off.
    "panic_surge_multiple": Range(1, 10, off=True),
    # A weight on the learned 99th-percentile shortfall, itself a headroom: no more than the headrooms' 10.
    "forecast_uncertainty": Range(0, 10),
    # Tonight's observed/forecast ratio is held within [min, max] before it multiplies the learned forecast. A
    # lowest ratio of 0 lets a quiet minute zero the forecast (pre-warm then asks for nothing at tip-off), and
    # over 1 it would never let the forecast run below the learned one (forecast_headroom's job); a highest
    # ratio under 1 never lets it reach the learned one, and 100 × the learned demand is not a forecast.
    "forecast_correction_min": Range(0.1, 1),
    "forecast_correction_max": Range(1, 100),
}

# A service's own numbers, as the service form and its API accept them (scaling.service_config checks them).
# Past these they are typos, and sizing with the serving model would work over absurd counts of servers
# (replicas × concurrency) every tick: 10,000 replicas of 1,000 requests in flight each is the largest fleet.
SERVICE_RANGES: dict[str, Range] = {
    "min_replicas": REPLICAS,
    "max_replicas": Range(1, REPLICAS.high),
    "hard_max_replicas": Range(1, REPLICAS.high),
    "concurrency": Range(1, 1_000, note="requests one replica serves at once"),
    "service_time_ms": Range(0.1, 600_000, note="ten minutes a request"),
    "slo_latency_ms": Range(1, 3_600_000, note="an hour"),
    "provisioning_delay_s": Range(0, DAY_S, note="a day"),
    # The dearest GPU instances cost about $100 an hour; 10,000 leaves room for any currency.
    "price_per_replica_hour": Range(0, 10_000),
    "metrics_lag_s": Range(0, 3_600, note="metrics an hour late are not a live signal"),
}

# The switches that size the fleet: with all of them off (the targets at 0), no rule recommends a count and
# the fleet holds at whatever runs, reading "within tolerance of target" — a policy with no scaling signal.
SIGNAL_SWITCHES = ("model_sizing", "slo_guard", "prewarm")
SIGNAL_TARGETS = ("target_utilization", "target_rps_per_replica", "target_in_flight_per_replica")


def param_range(name: str) -> Range:
    """A parameter's documented range (PARAM_RANGES; a day for windows named *_s, else ≥ 0)."""
    return PARAM_RANGES.get(name, UP_TO_A_DAY if name.endswith("_s") else NON_NEGATIVE)


def service_problems(params: dict[str, Any], *, slo_target: float, max_replicas: int) -> list[tuple[str, str]]:
    """The limits of PARAM_RANGES' notes, which depend on the service: (parameter, message) for each broken.
    A sizing target under the SLO target sizes for less than the SLO asks; a fallback count above the
    maximum is held at the maximum."""
    problems = []
    sizing = params.get("sizing_target")
    if isinstance(sizing, int | float) and sizing < slo_target:
        problems.append(("sizing_target", f"must be at least the service's SLO target {slo_target:g} (got {sizing:g})"))
    fallback = params.get("fallback_replicas")
    if isinstance(fallback, int | float) and fallback > max_replicas:
        problems.append(
            ("fallback_replicas", f"must be at most the service's maximum {max_replicas} (got {fallback:g})")
        )
    return problems


class PolicyParamsError(ValueError):
    """A policy the engine refuses, with the parameter at fault (`field`: the first named, for a rule
    between several), so the form and the API show the message beside it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _p(default: Any, help_text: str) -> Any:
    """A policy parameter with the help text the dashboard form shows beside it."""
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class PolicyParams:
    """Tunable engine parameters, stored per service as a dict.

    Every field has a default, so a stored dict only holds what an operator changed;
    a target of 0 switches its rule off.
    """

    # Target tracking: each enabled metric recommends ceil(current × observed / target); the largest wins.
    target_utilization: float = _p(
        0.0,
        "Utilization target (observed λ / capacity) for target tracking; 0 = off (the serving-model rule sizes "
        "for the SLO instead, which needs fewer replicas at scale).",
    )
    target_rps_per_replica: float = _p(0.0, "Requests per second per replica to aim for; 0 = off.")
    target_in_flight_per_replica: float = _p(0.0, "In-flight requests per replica to aim for; 0 = off.")
    tolerance: float = 0.1
    # Serving-model sizing of the observed rate (the SLO-aware reactive rule).
    model_sizing: bool = _p(True, "Size for the observed request rate with the M/M/c serving model and the SLO.")
    sizing_target: float = _p(
        0.9993,
        "Attainment the serving model sizes for (≥ the service's SLO target; just under the model's ceiling "
        "1 − e^(−μL) at most). A little above the SLO target costs about one replica and keeps steps clear of it.",
    )
    low_count_replicas: int = _p(
        10,
        "While the SLO target itself needs at most this many replicas, size for the SLO target rather than the "
        "sizing target: one replica is a large step there, and those steps carry few requests; 0 = off.",
    )
    reactive_headroom: float = _p(
        0.0, "Extra request rate (fraction) the serving-model rule provisions for above the observed rate."
    )
    # SLO guard: p95 or p99 above the SLO's latency limit, or errors above its budget (1 − slo_target), scales out
    # to what the model says meets it.
    slo_guard: bool = _p(
        True,
        "Scale out when the observed p95 or p99 latency is above the SLO's latency limit, or the error rate above "
        "its budget (1 − the SLO's target share).",
    )
    # Panic (Knative-style): the short-window rate needs ≥ panic_threshold × ready replicas.
    panic_threshold: float = _p(
        2.0, "Enter panic when the short-window rate needs this many times the ready count; 0 = off."
    )
    panic_window_s: float = _p(60.0, "Panic lasts this long after the last surge; no scale-in while panicking.")
    panic_surge_ratio: float = _p(
        2.0,
        "Also panic when the short-window rate jumps this many times above the minute before it and the calendar "
        "does not expect it (with no forecast for the moment, the jump alone); 0 = off.",
    )
    panic_unforecast_ratio: float = _p(
        1.4,
        "Also panic when the short-window rate is this many times what the calendar forecast expects (scaled "
        "as the minute before ran): a surge no scheduled game explains; 0 = off.",
    )
    panic_smooth_ratio: float = _p(
        1.3,
        "In game hours, panic at this multiple of what the forecast expects where the calendar expects no jump "
        "near now (no quarter end, tip-off or buzzer within two minutes); 0 = as elsewhere in game hours.",
    )
    panic_quiet_ratio: float = _p(
        1.2,
        "With no game on the calendar near (quiet hours), panic at this multiple of what the forecast expects "
        "instead, and as soon as the rate rises, while the ready replicas still serve it: no scheduled surge "
        "can explain a rise then; 0 = as in game hours.",
    )
    panic_headroom: float = _p(
        0.6,
        "On entering panic, provision this much (fraction) above the short-window rate: a surge is still rising "
        "when its first tick sees it.",
    )
    panic_surge_multiple: float = _p(
        3.0,
        "On a surge, provision at least this multiple of the rate before it: breaking news triples traffic within "
        "a minute, and the first tick sees only the start of the rise; 0 = off.",
    )
    # Schedule-aware pre-warm.
    prewarm: bool = _p(True, "Provision ahead for the demand forecast from the game calendar and learned profiles.")
    forecast_headroom: float = _p(
        0.05, "Least extra request rate (fraction) provisioned above the forecast, whatever the history says."
    )
    cold_start_headroom: float = _p(
        0.5,
        "Extra request rate (fraction) provisioned above the forecast while the service has no learned history "
        "(the default shape is only a guess); learned history replaces it.",
    )
    forecast_uncertainty: float = _p(
        1.0,
        "Weight of the learned forecast error: add the history's 99th-percentile shortfall at this phase of the "
        "game (quarter ends, halftime, finish; over the finish, from the moments that were climbing as tonight is, "
        "or not; where games overlap, each game's phase weighed by its share of the forecast) instead of the flat "
        "headroom when larger; 0 = flat headroom only.",
    )
    forecast_lookahead_s: float = _p(
        45.0, "Also provision for the forecast this many seconds past the next tick (covers timing error)."
    )
    forecast_trend: float = _p(
        0.3,
        "Weight (0–1) of the recent rise in observed/forecast: extrapolates a climbing ratio (a close finish) "
        "to the forecast time. Never lowers the forecast.",
    )
    detect_overtime: bool = _p(
        True,
        "Read from the metric window when a game runs past its usual finish (overtime) and forecast its "
        "finish that much later.",
    )
    forecast_correction_min: float = _p(0.6, "Lowest observed/forecast ratio applied to tonight's forecast.")
    forecast_correction_max: float = _p(
        5.0,
        "Highest observed/forecast ratio applied to tonight's forecast. Keep it above breaking news (traffic "
        "× 3) on an hour the learned model under-forecasts: capped below the ratio, the forecast asks for less "
        "than is served now.",
    )
    scale_down_stabilization_s: float = _p(
        30.0,
        "Scale in only to the highest recommendation of this many seconds (HPA's stabilization window); "
        "lengthened by the provisioning-delay share below.",
    )
    stabilization_per_delay: float = _p(
        0.25,
        "The stabilization window is at least this share of the provisioning delay: replicas let go take that "
        "long to come back, so a slower backend lets go more slowly; 0 = the window alone.",
    )
    scale_up_stabilization_s: float = 0.0
    scale_in_hold_rising: float = _p(
        0.02,
        "Hold scale-in while the observed rate rose more than this fraction over the last minute (a close "
        "finish climbs for minutes); 0 = off.",
    )
    # HPA-style rate limits: per period, the larger of Pods and Percent applies.
    scale_up_pods: int = 4
    # Up to triple per period: a surge's first panic tick must be able to ask for what it will need.
    scale_up_percent: float = 200.0
    scale_up_period_s: float = 15.0
    scale_down_pods: int = 0
    scale_down_percent: float = 100.0
    scale_down_period_s: float = 15.0
    scale_in_cooldown_s: float = 0.0
    # Replicas to hold at when metrics stay missing for this long (0 = keep current).
    fallback_replicas: int = 0
    fallback_after_s: float = 300.0

    def scale_down_window_s(self, provisioning_delay_s: float) -> float:
        """The scale-down stabilization window: the configured one, or the delay share if that is longer."""
        return max(self.scale_down_stabilization_s, self.stabilization_per_delay * provisioning_delay_s)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> PolicyParams:
        if data is not None and not isinstance(data, dict):
            raise PolicyParamsError(
                "policy", f"a policy is a mapping of parameters to values, not a {type(data).__name__}"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data or {}) - known)
        if unknown:
            raise PolicyParamsError(unknown[0], f"unknown policy parameter(s): {', '.join(unknown)}")
        params = cls(**(data or {}))
        params.validate()
        return params

    def validate(self) -> None:
        """Raise PolicyParamsError (a ValueError) naming the first field whose value the engine cannot use: of
        the wrong type, or outside its documented range (`param_range`, the table the policy form and API check
        too); then the rules between fields, which the form and the API check through this. The limits that
        depend on the service (`service_problems`) are the form's and API's, which know it."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(f.default, bool):
                if not isinstance(value, bool):
                    raise PolicyParamsError(f.name, f"policy parameter {f.name} must be true or false, not {value!r}")
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise PolicyParamsError(f.name, f"policy parameter {f.name} must be a number, not {value!r}")
            if isinstance(f.default, int) and not float(value).is_integer():
                raise PolicyParamsError(f.name, f"policy parameter {f.name} must be a whole number, not {value!r}")
            allowed = param_range(f.name)
            if not allowed.contains(value):
                raise PolicyParamsError(
                    f.name, f"policy parameter {f.name} must be {allowed.describe()}, not {value!r}"
                )
        if self.forecast_correction_min > self.forecast_correction_max:
            raise PolicyParamsError(
                "forecast_correction_min",
                "policy parameter forecast_correction_min must not exceed forecast_correction_max",
            )
        if not any(getattr(self, name) for name in SIGNAL_SWITCHES) and not any(
            getattr(self, name) > 0 for name in SIGNAL_TARGETS
        ):
            raise PolicyParamsError(
                SIGNAL_SWITCHES[0],
                f"the policy has no scaling signal: {', '.join(SIGNAL_SWITCHES)} are all off and "
                f"{', '.join(SIGNAL_TARGETS)} all 0, so no rule would size the fleet; switch one on or set a target",
            )
        if self.scale_up_pods == 0 and self.scale_up_percent == 0:
            raise PolicyParamsError(
                "scale_up_pods",
                "scale_up_pods and scale_up_percent are both 0: the service could never scale out, not even on an "
                "SLO breach; set either above 0",
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MetricPoint:
    """One observed metric sample. None means the source had no datapoint."""

    ts: datetime
    rps: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    utilization: float | None = None
    in_flight: float | None = None
    error_rate: float | None = None

    @cached_property
    def epoch(self) -> float:
        """`ts` as epoch seconds (computed once; a sample is read by many ticks)."""
        return self.ts.timestamp()


@dataclass(frozen=True)
class OverrideSpec:
    id: int | str
    kind: str  # pin | floor | ceiling | freeze_scale_in | freeze
    starts_at: datetime
    ends_at: datetime
    replicas: int | None = None
    reason: str = ""

    def active_at(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at


@dataclass(frozen=True)
class GameSpec:
    game_id: str
    tip_utc: datetime
    away_team: str
    home_team: str
    national_tv: str = ""
    # Teams and tip-off not yet set (a knockout round): `tip_utc` is a placeholder. Kept in a schedule read
    # from a file (so a trace drawn from it stays the same), left out of everything that plans for a tip-off.
    tbd: bool = False

    @property
    def is_national(self) -> bool:
        tv = self.national_tv.strip()
        return bool(tv) and tv.upper() != "NBA TV"

    @cached_property
    def tier(self) -> str:
        """Broadcast tier used to learn traffic profiles: national TV draws several times a regional game."""
        return "national" if self.is_national else "regional"

    @cached_property
    def tip_s(self) -> float:
        """`tip_utc` as epoch seconds (computed once)."""
        return self.tip_utc.timestamp()

    @property
    def matchup(self) -> str:
        """ "LAL @ BOS" from schedule names such as "LAL (Lakers)"."""
        return f"{self.away_team.split(' ')[0]} @ {self.home_team.split(' ')[0]}"


@dataclass(frozen=True)
class PastRecommendation:
    """One earlier tick: the unconstrained recommendation and, when known, the count it set and the count
    provisioned when it was decided."""

    ts: datetime
    replicas: int
    desired: int | None = None
    provisioned: int | None = None


@dataclass(frozen=True)
class EngineInput:
    now: datetime
    service: ServiceSpec
    params: PolicyParams
    provisioned: int
    ready: int
    metrics: tuple[MetricPoint, ...] = ()
    mode: Mode = Mode.ACTIVE
    # When a pause or dry run ends (None while active, or when no end is known): for the summary only.
    mode_until: datetime | None = None
    overrides: tuple[OverrideSpec, ...] = ()
    games: tuple[GameSpec, ...] = ()
    # The engine's own unconstrained recommendations over the recent past,
    # oldest first (for stabilization windows).
    recent: tuple[PastRecommendation, ...] = ()
    last_scale_out_at: datetime | None = None
    last_scale_in_at: datetime | None = None
    # When metrics were last seen fresh (for the fallback count).
    metrics_missing_since: datetime | None = None
    # Learned demand model (baseline + per-tier profiles around tip-off). None = the default shape.
    forecaster: Forecaster | None = None


@dataclass(frozen=True)
class RuleResult:
    rule: str
    replicas: int | None
    inputs: dict[str, Any] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class Constraint:
    name: str
    before: int
    after: int
    detail: str = ""


@dataclass(frozen=True)
class Decision:
    desired: int
    current: int
    recommendation: int | None
    reason: Reason
    summary: str
    rules: tuple[RuleResult, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    forecast: dict[str, Any] | None = None

    @property
    def changed(self) -> bool:
        return self.desired != self.current

    @property
    def metrics_missing(self) -> bool:
        """Decided without fresh metrics, whatever then set the count (an override, the fallback, a dry run):
        the run of such ticks is what the fallback count waits out. A paused tick reads no metrics."""
        return self.recommendation is None and self.reason is not Reason.PAUSED

    def to_dict(self) -> dict[str, Any]:
        return {
            "desired": self.desired,
            "current": self.current,
            "recommendation": self.recommendation,
            "reason": str(self.reason),
            "summary": self.summary,
            "rules": [asdict(r) for r in self.rules],
            "constraints": [asdict(c) for c in self.constraints],
            "forecast": self.forecast,
        }


def planned(games: Iterable[GameSpec]) -> tuple[GameSpec, ...]:
    """The games whose tip-off is set: those a forecast, a tip-off window or a traffic shape can use."""
    return tuple(g for g in games if not g.tbd)
