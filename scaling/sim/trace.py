"""Traces: the `ts,rps` CSV of SERVING_MODEL.md, read and validated whole or not at all.

A trace is rows of an ISO-8601 UTC timestamp and the mean arrival rate over
[ts, ts+Δ), at a fixed step 1 ≤ Δ ≤ 60 s. Every problem is reported as
`file: line N: what is wrong`, and nothing of a bad file is returned.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt

from scaling.csv_lines import csv_lines

HEADER = ("ts", "rps")
MIN_STEP_S = 1
MAX_STEP_S = 60


class TraceError(ValueError):
    """A trace file that does not follow the contract (the message names file and line)."""


@dataclass(frozen=True)
class Trace:
    start: datetime
    step_s: int
    rps: npt.NDArray[np.float64]
    source: str = "trace.csv"

    @property
    def steps(self) -> int:
        return int(self.rps.size)

    @property
    def duration_s(self) -> int:
        return self.steps * self.step_s

    @property
    def end(self) -> datetime:
        """The end of the last step (exclusive)."""
        return self.start + timedelta(seconds=self.duration_s)

    @property
    def start_epoch_s(self) -> int:
        return int(self.start.timestamp())

    def timestamp_texts(self) -> list[str]:
        base = self.start_epoch_s
        return [format_ts(base + i * self.step_s) for i in range(self.steps)]

    def series(self) -> tuple[tuple[datetime, float], ...]:
        """(ts, rps) pairs, for policies that learn from a history."""
        return tuple(
            (self.start + timedelta(seconds=i * self.step_s), float(v)) for i, v in enumerate(self.rps.tolist())
        )


def format_ts(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_ts(text: str, where: str) -> int:
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise TraceError(f"{where}: ts {text!r} is not an ISO-8601 timestamp") from None
    if parsed.tzinfo is None or parsed.utcoffset() != timedelta(0):
        raise TraceError(f"{where}: ts {text!r} is not UTC (end it with Z)")
    if parsed.microsecond:
        raise TraceError(f"{where}: ts {text!r} has fractions of a second; steps are whole seconds")
    return int(parsed.timestamp())


def _parse_rps(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise TraceError(f"{where}: rps {text!r} is not a number") from None
    if not math.isfinite(value):
        raise TraceError(f"{where}: rps {text!r} is not a finite number")
    if value < 0.0:
        raise TraceError(f"{where}: rps {text!r} is negative")
    return value


def parse_trace(text: str, *, source: str = "trace.csv") -> Trace:
    """Validate and parse a whole trace; raise TraceError naming the file and line."""
    rows = csv_lines(text, source, TraceError)
    header = next(rows, None)
    if header is None:
        raise TraceError(f"{source}: line 1: the file is empty (expected the header 'ts,rps')")
    if tuple(h.strip() for h in header[1]) != HEADER:
        raise TraceError(f"{source}: line 1: header is {','.join(header[1])!r}, expected 'ts,rps'")
    times: list[int] = []
    rates: list[float] = []
    step: int | None = None
    for line, row in rows:
        where = f"{source}: line {line}"
        if not row or (len(row) == 1 and not row[0].strip()):
            raise TraceError(f"{where}: empty row")
        if len(row) != 2:
            raise TraceError(f"{where}: expected 2 fields (ts,rps), found {len(row)}")
        ts = _parse_ts(row[0], where)
        rps = _parse_rps(row[1], where)
        if times:
            delta = ts - times[-1]
            if delta <= 0:
                raise TraceError(f"{where}: ts {row[0].strip()} is not after the previous row's")
            if step is None:
                if not MIN_STEP_S <= delta <= MAX_STEP_S:
                    raise TraceError(
                        f"{where}: step of {delta} s is outside {MIN_STEP_S}..{MAX_STEP_S} s "
                        "(the first two rows set the step)"
                    )
                step = delta
            elif delta != step:
                if delta % step == 0:
                    missing = delta // step - 1
                    raise TraceError(f"{where}: gap of {delta} s after the previous row ({missing} step(s) missing)")
                raise TraceError(f"{where}: uneven step of {delta} s (the trace's step is {step} s)")
        times.append(ts)
        rates.append(rps)
    if len(times) < 2:
        raise TraceError(f"{source}: a trace needs at least two rows to define its step")
    assert step is not None  # noqa: S101 - two rows guarantee it
    return Trace(
        start=datetime.fromtimestamp(times[0], tz=UTC),
        step_s=step,
        rps=np.asarray(rates, dtype=np.float64),
        source=source,
    )


def read_trace(path: Path | str) -> Trace:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark, as spreadsheets write, is not the header
    except OSError as exc:
        raise TraceError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise TraceError(f"{path}: not UTF-8 text") from None
    return parse_trace(text, source=str(path))


def format_rps(value: float) -> str:
    """Shortest text that reads back as the same float (determinism and exact re-reading)."""
    return repr(float(value))


def trace_csv(trace: Trace, *, decimals: int | None = 3) -> str:
    """The trace as contract CSV text (rps rounded to `decimals`, or exact when None)."""
    out = io.StringIO()
    out.write("ts,rps\n")
    base = trace.start_epoch_s
    for i, value in enumerate(trace.rps.tolist()):
        text = f"{value:.{decimals}f}" if decimals is not None else format_rps(value)
        out.write(f"{format_ts(base + i * trace.step_s)},{text}\n")
    return out.getvalue()
