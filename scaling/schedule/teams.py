"""The league's 30 teams: tricode and name, as the league's schedules write them ("BOS (Celtics)").

The source is the league schedule of data/nba_2025_26_schedule.csv (a test holds the two equal): its
regular season's teams, each "TRICODE (Name)". Pure Python, for the schedule parser and game-day rules.
"""

from __future__ import annotations

# fmt: off
NBA_TEAMS: dict[str, str] = {
    "ATL": "Hawks", "BKN": "Nets", "BOS": "Celtics", "CHA": "Hornets", "CHI": "Bulls", "CLE": "Cavaliers",
    "DAL": "Mavericks", "DEN": "Nuggets", "DET": "Pistons", "GSW": "Warriors", "HOU": "Rockets",
    "IND": "Pacers", "LAC": "Clippers", "LAL": "Lakers", "MEM": "Grizzlies", "MIA": "Heat", "MIL": "Bucks",
    "MIN": "Timberwolves", "NOP": "Pelicans", "NYK": "Knicks", "OKC": "Thunder", "ORL": "Magic",
    "PHI": "76ers", "PHX": "Suns", "POR": "Trail Blazers", "SAC": "Kings", "SAS": "Spurs", "TOR": "Raptors",
    "UTA": "Jazz", "WAS": "Wizards",
}
# fmt: on
NBA_TRICODES = frozenset(NBA_TEAMS)


def tricode_named(name: str) -> str | None:
    """The tricode of the team a bare name is ("Celtics", "boston celtics"), or None."""
    folded = name.strip().casefold()
    for code, team in NBA_TEAMS.items():
        if folded == team.casefold() or folded.endswith(" " + team.casefold()):
            return code
    return None
