"""Replay inputs besides the trace: the service JSON and the league schedule.

Both are validated whole; errors name the file (and line or key).
"""

from __future__ import annotations

import json
import math
from dataclasses import fields
from pathlib import Path
from typing import Any

from scaling.policy.types import GameSpec, ServiceSpec
from scaling.schedule.parse import ScheduleError, parse_csv

# The keys of SERVING_MODEL.md's service table, with their types.
SERVICE_KEYS: dict[str, type] = {
    "service_time_ms": float,
    "concurrency": int,
    "provisioning_delay_s": float,
    "slo_latency_ms": float,
    "slo_target": float,
    "min_replicas": int,
    "max_replicas": int,
    "tick_s": float,
    "metrics_window_s": float,
    "metrics_lag_s": float,
    "price_per_replica_hour": float,
}


class InputError(ValueError):
    """A replay input that cannot be used (the message names the file)."""


def service_from_dict(data: dict[str, Any], *, source: str = "service.json") -> ServiceSpec:
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a JSON object of service parameters")
    unknown = sorted(set(data) - set(SERVICE_KEYS))
    if unknown:
        raise InputError(f"{source}: unknown key(s) {', '.join(unknown)}; known: {', '.join(SERVICE_KEYS)}")
    values: dict[str, Any] = {}
    for key, kind in SERVICE_KEYS.items():
        if key not in data:
            continue
        raw = data[key]
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise InputError(f"{source}: key {key!r}: {raw!r} is not a number")
        if kind is int and (not float(raw).is_integer()):
            raise InputError(f"{source}: key {key!r}: {raw!r} is not a whole number")
        if not math.isfinite(float(raw)):
            raise InputError(f"{source}: key {key!r}: {raw!r} is not finite")
        values[key] = int(raw) if kind is int else float(raw)
    spec = ServiceSpec(**values)
    checks = [
        ("service_time_ms", spec.service_time_ms > 0, "must be > 0"),
        ("concurrency", spec.concurrency >= 1, "must be >= 1"),
        ("provisioning_delay_s", spec.provisioning_delay_s >= 0, "must be >= 0"),
        ("slo_latency_ms", spec.slo_latency_ms > 0, "must be > 0"),
        ("slo_target", 0 < spec.slo_target < 1, "must be between 0 and 1"),
        ("min_replicas", spec.min_replicas >= 0, "must be >= 0"),
        ("max_replicas", spec.max_replicas >= max(spec.min_replicas, 1), "must be >= min_replicas and >= 1"),
        ("tick_s", spec.tick_s > 0, "must be > 0"),
        ("metrics_window_s", spec.metrics_window_s > 0, "must be > 0"),
        ("metrics_lag_s", spec.metrics_lag_s >= 0, "must be >= 0"),
        ("price_per_replica_hour", spec.price_per_replica_hour >= 0, "must be >= 0"),
    ]
    for key, ok, rule in checks:
        if not ok:
            raise InputError(f"{source}: key {key!r}: {getattr(spec, key)!r} {rule}")
    ceiling = 1.0 - math.exp(-(1000.0 / spec.service_time_ms) * spec.slo_latency_ms / 1000.0)
    if spec.slo_target >= ceiling:
        raise InputError(
            f"{source}: key 'slo_target': {spec.slo_target} is unreachable; the model's ceiling "
            f"1 - exp(-mu*L) is {ceiling:.8f}"
        )
    # The live controller's hard limit is the service maximum in replay.
    return ServiceSpec(
        **{**{f.name: getattr(spec, f.name) for f in fields(spec)}, "hard_max_replicas": spec.max_replicas}
    )


def service_to_dict(spec: ServiceSpec) -> dict[str, Any]:
    return {key: getattr(spec, key) for key in SERVICE_KEYS}


def read_text(path: Path) -> str:
    """A UTF-8 text file, without the byte-order mark a spreadsheet may put first."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None


def read_service(path: Path | str | None) -> ServiceSpec:
    if path is None:
        return service_from_dict({}, source="defaults")
    path = Path(path)
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: line {exc.lineno}: not valid JSON: {exc.msg}") from None
    return service_from_dict(data, source=str(path))


def read_schedule(path: Path | str) -> tuple[GameSpec, ...]:
    """The whole league schedule as GameSpecs, sorted by tip-off (games are announced in advance)."""
    path = Path(path)
    try:
        records = parse_csv(read_text(path), source=str(path))
    except ScheduleError as exc:
        raise InputError(str(exc)) from None
    games = [
        GameSpec(
            game_id=r.game_id,
            tip_utc=r.tip_utc,
            away_team=r.away_team,
            home_team=r.home_team,
            national_tv=r.national_tv,
            tbd=r.tbd,
        )
        for r in records
        if not r.postponed
    ]
    return tuple(sorted(games, key=lambda g: (g.tip_utc, g.game_id)))
