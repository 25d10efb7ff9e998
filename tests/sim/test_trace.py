"""Trace files are validated whole: every defect is named with file and line, and
the replay command exits non-zero without writing anything."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from scaling.sim.trace import TraceError, format_ts, parse_trace, read_trace, trace_csv

GOOD = "ts,rps\n2026-01-15T23:30:00Z,10\n2026-01-15T23:30:10Z,12.5\n2026-01-15T23:30:20Z,0\n"


def test_it_reads_a_good_trace() -> None:
    trace = parse_trace(GOOD)
    assert trace.step_s == 10
    assert trace.rps.tolist() == [10.0, 12.5, 0.0]
    assert trace.timestamp_texts()[0] == "2026-01-15T23:30:00Z"


def test_it_round_trips_through_csv() -> None:
    trace = parse_trace(GOOD)
    again = parse_trace(trace_csv(trace, decimals=None))
    assert again.start == trace.start
    assert np.array_equal(again.rps, trace.rps)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("time,rps\n2026-01-15T23:30:00Z,1\n", 1, "header"),
        ("", 1, "empty"),
        ("ts,rps\n2026-01-15T23:30:00Z,1\n2026-01-15T23:30:10Z,1\n2026-01-15T23:30:25Z,1\n", 4, "uneven step"),
        ("ts,rps\n2026-01-15T23:30:00Z,1\n2026-01-15T23:30:10Z,1\n2026-01-15T23:30:40Z,1\n", 4, "gap"),
        ("ts,rps\n2026-01-15T23:30:00Z,1\n2026-01-15T23:30:10Z,-3\n", 3, "negative"),
        ("ts,rps\n2026-01-15T23:30:00Z,1\n2026-01-15T23:30:10Z,lots\n", 3, "not a number"),
        ("ts,rps\n2026-01-15T23:30:00Z,1\n2026-01-15T23:30:10Z,nan\n", 3, "finite"),
        ("ts,rps\n2026-01-15T23:30:00Z,1\nyesterday,1\n", 3, "ISO-8601"),
        ("ts,rps\n2026-01-15T23:30:00+01:00,1\n2026-01-15T23:30:10Z,1\n", 2, "not UTC"),
        ("ts,rps\n2026-01-15T23:30:00,1\n2026-01-15T23:30:10Z,1\n", 2, "not UTC"),
        ("ts,rps\n2026-01-15T23:30:10Z,1\n2026-01-15T23:30:00Z,1\n", 3, "not after"),
        ("ts,rps\n2026-01-15T23:30:00Z,1\n2026-01-15T23:32:00Z,1\n", 3, "outside 1..60"),
        ("ts,rps\n2026-01-15T23:30:00Z,1,2\n", 2, "expected 2 fields"),
        ('ts,rps\n2026-01-15T23:30:00Z,"1\n2026-01-15T23:30:10Z,1"\n', 2, "runs on to line 3"),
        ('ts,rps\n2026-01-15T23:30:00Z,"1\n2026-01-15T23:30:10Z,1\n', 2, "a quote does not open and close"),
    ],
)
def test_it_rejects_a_bad_trace_naming_file_and_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(TraceError) as excinfo:
        parse_trace(text, source="night.csv")
    message = str(excinfo.value)
    assert message.startswith(f"night.csv: line {line}:"), message
    assert fragment in message


def test_a_stray_quote_in_a_long_trace_is_named_by_its_line() -> None:
    # The quote used to run the rest of the file into one field, past csv's field size limit.
    rows = [f"{format_ts(1_768_519_800 + 10 * i)},{i}" for i in range(20_000)]
    rows[2] = rows[2].replace(",", ',"')
    with pytest.raises(TraceError, match=r"^night.csv: line 4: a quote does not open and close a field"):
        parse_trace("ts,rps\n" + "\n".join(rows) + "\n", source="night.csv")


def test_a_byte_order_mark_is_not_taken_for_the_header(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_text(GOOD, encoding="utf-8-sig")
    assert read_trace(path).steps == parse_trace(GOOD).steps


def test_it_needs_two_rows_to_know_the_step() -> None:
    with pytest.raises(TraceError, match="at least two rows"):
        parse_trace("ts,rps\n2026-01-15T23:30:00Z,1\n", source="one.csv")


def test_it_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="cannot read"):
        read_trace(tmp_path / "absent.csv")


@pytest.mark.parametrize("bad_file", ["trace", "history"])
def test_replay_rejects_a_bad_input_and_writes_nothing(tmp_path: Path, bad_file: str) -> None:
    good = tmp_path / "good.csv"
    good.write_text(GOOD)
    bad = tmp_path / "bad.csv"
    bad.write_text("ts,rps\n2026-01-15T23:30:00Z,1\n2026-01-15T23:30:10Z,-1\n")
    out, summary = tmp_path / "steps.csv", tmp_path / "summary.json"
    files = {"trace": good, "history": good, bad_file: bad}
    with pytest.raises(CommandError, match=r"bad\.csv: line 3: rps '-1' is negative"):
        call_command(
            "replay", trace=str(files["trace"]), history=str(files["history"]), out=str(out), summary=str(summary)
        )
    assert not out.exists()
    assert not summary.exists()


def test_replay_rejects_an_unknown_service_key(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text(GOOD)
    service = tmp_path / "svc.json"
    service.write_text('{"replicas": 3}')
    with pytest.raises(CommandError, match=r"svc\.json: unknown key\(s\) replicas"):
        call_command("replay", trace=str(trace), service=str(service))


def test_replay_rejects_an_unknown_policy(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text(GOOD)
    with pytest.raises(CommandError, match="not a built-in policy"):
        call_command("replay", trace=str(trace), policy="kubernetes")


def test_replay_rejects_a_policy_json_with_an_unknown_parameter(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text(GOOD)
    policy = tmp_path / "p.json"
    policy.write_text('{"target_utilisation": 0.5}')
    with pytest.raises(CommandError, match=r"p\.json: unknown policy parameter"):
        call_command("replay", trace=str(trace), policy=str(policy))
