"""Writes for the game calendar."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from scaling import override_selectors as reads
from scaling.audit import Actor, EventType, audit_record
from scaling.models import Game, Override
from scaling.overrides import REASON_MAX_CHARS, _apply_change, _cancel_locked
from scaling.schedule.parse import GameRecord, ScheduleError, check_tip_offs, matchup, moved_words, parse_schedule, said
from scaling.schedule.rules import matchup_suffix, rule_matches, rules_apply


@dataclass(frozen=True)
class ImportSummary:
    created: int
    updated: int
    unchanged: int
    overrides_moved: int = 0
    overrides_cancelled: int = 0
    overrides_scheduled: int = 0
    demo_games_removed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "overrides_moved": self.overrides_moved,
            "overrides_cancelled": self.overrides_cancelled,
            "overrides_scheduled": self.overrides_scheduled,
            "demo_games_removed": self.demo_games_removed,
        }


# The demo's games (scaling/demo.py) carry this source: last season shifted by whole weeks, standing in for a
# calendar until an operator imports one.
DEMO_SOURCE_PREFIX = "demo:"
# Tip-offs are set in US/Eastern: a shifted game keeps its tip-off time there, across a daylight-saving change.
LEAGUE_TIME_ZONE = ZoneInfo("America/New_York")


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
    "tbd",
)


# An import moves the overrides around a game whose tip-off it moves (_move_overrides); a move longer than
# this is more likely a typo than a rescheduled game, and is refused while overrides are scheduled around it.
MAX_OVERRIDE_MOVE = timedelta(days=7)


def _linked_live(game: Game, now: datetime) -> list[Override]:
    return list(
        Override.objects.select_for_update(of=("self",))
        .select_related("service", "game", "rule")
        .filter(game=game, status__in=reads.LIVE_STATUSES, ends_at__gt=now)
    )


def _move_overrides(game: Game, delta: timedelta, *, actor: Actor, now: datetime) -> int:
    """A moved tip-off moves the windows of the overrides scheduled around it."""
    rows = _linked_live(game, now)
    for o in rows:
        _apply_change(
            o,
            actor=actor,
            event_type=EventType.OVERRIDE_MOVED,
            reason=f"tip-off of {game.game_id} moved {moved_words(delta)}",
            now=now,
            starts_at=o.starts_at + delta,
            ends_at=o.ends_at + delta,
        )
    return len(rows)


def _cancel_unmatched(game: Game, *, actor: Actor, now: datetime) -> int:
    """Overrides a rule scheduled for a game it no longer matches (e.g. the network changed) are cancelled."""
    rows = [o for o in _linked_live(game, now) if o.rule is not None and not rule_matches(o.rule.match, game)]
    for o in rows:
        _cancel_locked(o, actor=actor, reason=f"game {game.game_id} no longer matches rule {o.rule}", now=now)
    return len(rows)


def _retitle_rule_floors(game: Game, old_teams: tuple[str, str], *, actor: Actor, now: datetime) -> int:
    """A rule's floors name their game's teams at the end of the reason: new teams rewrite that part alone.

    Only a floor whose reason still ends as the rule wrote it; one made by hand keeps its reason as typed.
    """
    old, new = matchup_suffix(*old_teams), matchup_suffix(game.away_team, game.home_team)
    rows = [o for o in _linked_live(game, now) if o.rule is not None and o.reason.endswith(old)]
    for o in rows:
        before = o.reason
        o.reason = (o.reason.removesuffix(old) + new)[:REASON_MAX_CHARS]
        o.version += 1  # a change, as _apply_change counts one
        o.save(update_fields=["reason", "version"])
        audit_record(
            actor=actor,
            event_type=EventType.OVERRIDE_RETITLED,
            service=o.service,
            object_type="override",
            object_id=o.pk,
            before={"reason": before},
            after={"reason": o.reason},
            reason=f"teams of {game.game_id} changed:{old} to{new}",
            at=now,
        )
    return len(rows)


def _cancel_overrides(game: Game, *, actor: Actor, now: datetime) -> int:
    rows = _linked_live(game, now)
    why = "postponed" if game.postponed else "now to be decided (teams and tip-off)"
    for o in rows:
        _cancel_locked(o, actor=actor, reason=f"game {game.game_id} {why}", now=now)
    return len(rows)


def _shifted(tip: datetime, weeks: int) -> datetime:
    return (tip.astimezone(LEAGUE_TIME_ZONE) + timedelta(weeks=weeks)).astimezone(UTC)


def _refuse_long_moves(
    records: list[GameRecord], existing: dict[str, Game], *, shift_weeks: int, limit: timedelta, now: datetime
) -> None:
    """ScheduleError naming the record that would move the overrides scheduled around its game by more than
    `limit`: the operator corrects the file, or cancels the overrides and imports again."""
    for record in records:
        game = existing.get(record.game_id)
        if game is None or ((record.postponed or record.tbd) and not (game.postponed or game.tbd)):
            continue  # a new game, or one whose overrides are cancelled, not moved
        tip = _shifted(record.tip_utc, shift_weeks)
        if abs(tip - game.tip_utc) <= limit:
            continue
        live = Override.objects.filter(game=game, status__in=reads.LIVE_STATUSES, ends_at__gt=now).count()
        if live:
            raise ScheduleError(
                f"{record.where or record.game_id}: field {record.tip_field!r} moves the tip-off of {game.game_id} "
                f"{moved_words(tip - game.tip_utc)}, from {game.tip_utc:%Y-%m-%d %H:%M} to {tip:%Y-%m-%d %H:%M} UTC, "
                f"and {live} override(s) are scheduled around it: an import moves them by at most {limit.days} "
                "days. Correct the file, or cancel the override(s) and import again"
            )


def _demo_games_remove(
    *, records: list[GameRecord], shift_weeks: int, actor: Actor, source: str, now: datetime
) -> tuple[int, int]:
    """Remove the demo's games still to come, cancelling what is still scheduled around them: (games removed,
    overrides cancelled).

    The played ones stay (tipped by `now`, neither postponed nor to be decided): the services' recorded traffic
    ran under them, and the demand model learns game nights from them; without them it learns game nights with
    no games. Except a played game the import holds itself (same teams, same tip-off), which the import replaces;
    one whose id the import takes (the demo replays a real season, ids and all) stays under the demo's prefix.
    """
    demo = Game.objects.filter(source__startswith=DEMO_SOURCE_PREFIX)
    imported = {(r.away_team, r.home_team, _shifted(r.tip_utc, shift_weeks)) for r in records}
    taken = {r.game_id for r in records}
    id_length = Game._meta.get_field("game_id").max_length or 0
    played = demo.filter(tip_utc__lte=now, postponed=False, tbd=False)
    kept = [
        g
        for g in played
        if (g.away_team, g.home_team, g.tip_utc) not in imported
        and (g.game_id not in taken or len(DEMO_SOURCE_PREFIX + g.game_id) <= id_length)
    ]
    games = demo.exclude(pk__in=[g.pk for g in kept])
    live = (
        Override.objects.select_for_update(of=("self",))
        .select_related("service", "game", "rule")
        .filter(game__in=games, status__in=reads.LIVE_STATUSES, ends_at__gt=now)
    )
    cancelled = 0
    for o in live:
        assert o.game is not None  # noqa: S101 - filtered on its game
        _cancel_locked(o, actor=actor, reason=f"demo game {o.game.game_id} replaced by the import of {source}", now=now)
        cancelled += 1
    _, deleted = games.delete()  # their past overrides stay, without a game
    for game in kept:
        if game.game_id in taken:
            game.game_id = DEMO_SOURCE_PREFIX + game.game_id
            game.save(update_fields=["game_id", "updated_at"])
    return deleted.get(Game._meta.label, 0), cancelled


def _refuse_twins_on_calendar(records: list[GameRecord]) -> None:
    """ScheduleError naming the record of a game the calendar has under another id (the demo's games aside:
    they give way to an import), which would count its demand twice."""
    keyed = {key: r for r in records if (key := matchup(r)) is not None}
    if not keyed:
        return
    others = (
        Game.objects.filter(tip_utc__in={tip for _, tip in keyed}, tbd=False)
        .exclude(game_id__in=[r.game_id for r in records])
        .exclude(source__startswith=DEMO_SOURCE_PREFIX)
    )
    for game in others:
        key = matchup(game)
        record = keyed.get(key) if key is not None else None
        if record is not None:
            raise ScheduleError(
                f"{record.where or record.game_id}: game {record.game_id} is game {game.game_id} already on the "
                f"calendar (from {game.source}) under another id: {said(record)}; one game listed twice would "
                f"count its demand twice: give it the calendar's id, {game.game_id}"
            )


def games_upsert(
    *,
    records: Iterable[GameRecord],
    actor: Actor,
    source: str,
    shift_weeks: int = 0,
    audit_unchanged: bool = False,
    max_override_move: timedelta | None = None,
    now: datetime | None = None,
) -> ImportSummary:
    """Create or update games by game id in one transaction, audited as one import.

    1. A schedule other than the demo's replaces the demo's coming games, which only stand in until one is
       imported: they would stand beside a later season's on the same nights. Its played games stay, as the
       record of what the recorded traffic ran under (`_demo_games_remove`). (seed_demo leaves an imported
       calendar alone.)
    2. Upsert every game; unchanged games are not written.
    3. A moved tip-off moves its linked overrides; a postponed game, or one now to be decided, cancels them;
       new teams rewrite the matchup a rule's floor names at the end of its reason.
    4. Enabled game-day rules schedule overrides for the new and changed games.

    With `max_override_move`, a record that would move the overrides around its game further than that is
    refused (ScheduleError) before anything is written.
    """
    now = now or timezone.now()
    records = list(records)
    source = source[: Game._meta.get_field("source").max_length]  # a label: a long URL is kept as far as it fits
    created = updated = unchanged = moved = cancelled = removed = 0
    touched: list[Game] = []
    with transaction.atomic():
        if max_override_move is not None:
            before_qs = Game.objects.filter(game_id__in=[r.game_id for r in records])
            if not source.startswith(DEMO_SOURCE_PREFIX):  # the demo's games give way below, none is moved
                before_qs = before_qs.exclude(source__startswith=DEMO_SOURCE_PREFIX)
            before = {g.game_id: g for g in before_qs}
            _refuse_long_moves(records, before, shift_weeks=shift_weeks, limit=max_override_move, now=now)
        if not source.startswith(DEMO_SOURCE_PREFIX):
            removed, cancelled = _demo_games_remove(
                records=records, shift_weeks=shift_weeks, actor=actor, source=source, now=now
            )
        existing = {g.game_id: g for g in Game.objects.filter(game_id__in=[r.game_id for r in records])}
        for record in records:
            values = {
                "season_type": record.season_type,
                "tip_utc": _shifted(record.tip_utc, shift_weeks),
                "away_team": record.away_team,
                "home_team": record.home_team,
                "venue": record.venue,
                "national_tv": record.national_tv,
                "label": record.label,
                "sub_label": record.sub_label,
                "postponed": record.postponed,
                "tbd": record.tbd,
            }
            game = existing.get(record.game_id)
            if game is None:
                touched.append(
                    Game.objects.create(game_id=record.game_id, shifted_weeks=shift_weeks, source=source, **values)
                )
                created += 1
                continue
            if all(getattr(game, f) == values[f] for f in _FIELDS) and game.shifted_weeks == shift_weeks:
                unchanged += 1
                continue
            old_tip, was_planned = game.tip_utc, not (game.postponed or game.tbd)
            old_teams = (game.away_team, game.home_team)
            for name, value in values.items():
                setattr(game, name, value)
            game.shifted_weeks = shift_weeks
            game.source = source
            game.save()
            updated += 1
            touched.append(game)
            if (game.postponed or game.tbd) and was_planned:
                cancelled += _cancel_overrides(game, actor=actor, now=now)
            else:
                if game.tip_utc != old_tip:
                    moved += _move_overrides(game, game.tip_utc - old_tip, actor=actor, now=now)
                cancelled += _cancel_unmatched(game, actor=actor, now=now)
                if (game.away_team, game.home_team) != old_teams:
                    _retitle_rule_floors(game, old_teams, actor=actor, now=now)
        scheduled = rules_apply(actor=actor, now=now, games=touched) if touched else 0
        summary = ImportSummary(created, updated, unchanged, moved, cancelled, scheduled, removed)
        if created or updated or removed or audit_unchanged:
            audit_record(
                actor=actor,
                event_type=EventType.SCHEDULE_IMPORTED,
                object_type="schedule",
                object_id=source[:64],
                after=summary.as_dict() | {"shift_weeks": shift_weeks},
                reason=f"imported {len(records)} games from {source}",
                at=now,
            )
    return summary


def schedule_import(*, text: str, source: str, actor: Actor, now: datetime | None = None) -> ImportSummary:
    """Parse a schedule (CSV or league feed JSON, detected from content) and upsert it, all or nothing.

    Raises ScheduleError naming the line or index of the first bad record; nothing is written then. Beyond
    what the parser checks: every tip-off within reach (check_tip_offs), and no override moved by more than
    MAX_OVERRIDE_MOVE.
    """
    now = now or timezone.now()
    records = parse_schedule(text, source=source)
    check_tip_offs(records, now=now)
    _refuse_twins_on_calendar(records)
    return games_upsert(
        records=records,
        actor=actor,
        source=source,
        audit_unchanged=True,
        max_override_move=MAX_OVERRIDE_MOVE,
        now=now,
    )
