"""Parse league schedules into plain records, validating everything first.

A bad record raises ScheduleError naming the file, line (CSV) or index (JSON)
and field; callers write nothing unless the whole file parses.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime


class ScheduleError(ValueError):
    pass


@dataclass(frozen=True)
class GameRecord:
    game_id: str
    tip_utc: datetime
    away_team: str
    home_team: str
    season_type: str = ""
    venue: str = ""
    national_tv: str = ""
    label: str = ""
    sub_label: str = ""
    postponed: bool = False


CSV_REQUIRED = ("game_id", "tip_utc", "away_team", "home_team")


def parse_utc(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("timestamp has no time zone")
    return parsed.astimezone(UTC)


def parse_csv(text: str, *, source: str = "schedule.csv") -> list[GameRecord]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [name for name in CSV_REQUIRED if name not in (reader.fieldnames or [])]
    if missing:
        raise ScheduleError(f"{source}: line 1: missing column(s) {', '.join(missing)}")
    records: list[GameRecord] = []
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        for name in CSV_REQUIRED:
            if not (row.get(name) or "").strip():
                raise ScheduleError(f"{source}: line {line}: field {name!r} is empty")
        game_id = row["game_id"].strip()
        if game_id in seen:
            raise ScheduleError(f"{source}: line {line}: game_id {game_id} repeats line {seen[game_id]}")
        seen[game_id] = line
        try:
            tip = parse_utc(row["tip_utc"])
        except ValueError as exc:
            raise ScheduleError(f"{source}: line {line}: field 'tip_utc' {row['tip_utc']!r}: {exc}") from None
        records.append(
            GameRecord(
                game_id=game_id,
                tip_utc=tip,
                away_team=row["away_team"].strip(),
                home_team=row["home_team"].strip(),
                season_type=(row.get("season_type") or "").strip(),
                venue=(row.get("venue") or "").strip(),
                national_tv=(row.get("national_tv") or "").strip(),
            )
        )
    if not records:
        raise ScheduleError(f"{source}: no games found")
    return records
