"""Writes for the game calendar."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction

from scaling.audit import Actor, EventType, audit_record
from scaling.models import Game
from scaling.schedule.parse import GameRecord


@dataclass(frozen=True)
class ImportSummary:
    created: int
    updated: int
    unchanged: int

    def as_dict(self) -> dict[str, int]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged}


_FIELDS = (
    "season_type",
    "tip_utc",
    "away_team",
    "home_team",
    "venue",
    "national_tv",
    "label",
    "sub_label",
    "postponed",
)


def games_upsert(*, records: Iterable[GameRecord], actor: Actor, source: str, shift_weeks: int = 0) -> ImportSummary:
    """Create or update games by game id in one transaction, audited as one import."""
    records = list(records)
    created = updated = unchanged = 0
    with transaction.atomic():
        existing = {g.game_id: g for g in Game.objects.filter(game_id__in=[r.game_id for r in records])}
        for record in records:
            values = {
                "season_type": record.season_type,
                "tip_utc": record.tip_utc + timedelta(weeks=shift_weeks),
                "away_team": record.away_team,
                "home_team": record.home_team,
                "venue": record.venue,
                "national_tv": record.national_tv,
                "label": record.label,
                "sub_label": record.sub_label,
                "postponed": record.postponed,
            }
            game = existing.get(record.game_id)
            if game is None:
                Game.objects.create(game_id=record.game_id, shifted_weeks=shift_weeks, source=source, **values)
                created += 1
                continue
            if all(getattr(game, f) == values[f] for f in _FIELDS) and game.shifted_weeks == shift_weeks:
                unchanged += 1
                continue
            for name, value in values.items():
                setattr(game, name, value)
            game.shifted_weeks = shift_weeks
            game.source = source
            game.save()
            updated += 1
        summary = ImportSummary(created, updated, unchanged)
        if created or updated:
            audit_record(
                actor=actor,
                event_type=EventType.SCHEDULE_IMPORTED,
                object_type="schedule",
                object_id=source[:64],
                after=summary.as_dict() | {"shift_weeks": shift_weeks},
                reason=f"imported {len(records)} games from {source}",
            )
    return summary
