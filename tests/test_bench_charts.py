"""bench/charts.py runs end to end (on SQLite, small), so the committed CHARTS.md stays reproducible."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_charts_benchmark_times_samples_and_decisions_and_writes_its_tables(tmp_path: Path) -> None:
    out = tmp_path / "CHARTS.md"
    env = {**os.environ, "TIPOFF_ALLOW_INSECURE_SECRET": "1"}
    args = ["--services", "2", "--days", "1", "--runs", "1", "--out", str(out)]
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "charts.py"), *args],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = out.read_text()
    assert "| 24 h | `fleet_timeseries` |" in report and "Both ways drew the same values" in report
    # The decisions: one a 15 s tick up to 5 minutes before the range ends (5,740 of its 24 h), drawn one a chart
    # bucket of 5 minutes, each with its forecast.
    [row] = [line for line in report.splitlines() if line.startswith("| 24 h | 5,")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:4] == ["5,740", "288", "288"], row
