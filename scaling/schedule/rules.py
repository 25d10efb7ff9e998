"""Game-day rules: match games, and schedule floors around them as visible,
cancellable overrides linked to the game and the rule."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from scaling import override_selectors as reads
from scaling.audit import Actor, EventType, audit_record
from scaling.models import Game, GameDayRule, Override, Service
from scaling.overrides import OverrideError, override_create
from scaling.schedule.teams import NBA_TRICODES

MATCH_KEYS = ("national_tv", "networks", "teams", "season_types", "labels", "weekdays")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# Generated overrides a rule change replaces carry this reason, so the rule
# may generate them again; those an operator cancelled stay cancelled.
RULE_CHANGED = "game-day rule changed"


class RuleError(ValueError):
    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def _tricode(team: str) -> str:
    return team.split(" ", 1)[0].strip().upper()


def rule_matches(match: dict[str, Any], game: Game) -> bool:
    """Every criterion given must hold; within a list, any value will do."""
    if match.get("national_tv") and not game.is_national:
        return False
    networks = [n.lower() for n in match.get("networks") or []]
    if networks and not any(n in game.national_tv.lower() for n in networks):
        return False
    teams = {t.upper() for t in match.get("teams") or []}
    if teams and not ({_tricode(game.home_team), _tricode(game.away_team)} & teams):
        return False
    season_types = {s.lower() for s in match.get("season_types") or []}
    if season_types and game.season_type.lower() not in season_types:
        return False
    labels = [lb.lower() for lb in match.get("labels") or []]
    text = f"{game.label} {game.sub_label} {game.season_type}".lower()
    if labels and not any(lb in text for lb in labels):
        return False
    weekdays = {int(d) for d in match.get("weekdays") or []}
    local = game.tip_utc.astimezone(ZoneInfo(settings.OPERATOR_TIME_ZONE))
    return not (weekdays and local.weekday() not in weekdays)


def known_teams() -> set[str]:
    """The team codes a rule may name: the league's, and any other team a game on the calendar has."""
    teams = set(NBA_TRICODES)
    for home, away in Game.objects.values_list("home_team", "away_team").distinct():
        teams.update(code for code in (_tricode(home), _tricode(away)) if code)
    return teams


def networks_matching_no_game(match: dict[str, Any]) -> list[str]:
    """The match's networks no game on the calendar is shown on, as rule_matches reads a network (a part of
    the game's national TV, any case). Allowed, for a TV deal the schedule does not list yet, but worth saying:
    the rule schedules nothing on them."""
    return [n for n in match.get("networks") or [] if not Game.objects.filter(national_tv__icontains=n).exists()]


def match_warnings(match: dict[str, Any]) -> list[str]:
    """What a saved rule's confirmation should warn of: the networks it names that no game is on."""
    return [
        f"Network {network!r} matches no game on the calendar: the rule schedules nothing for it until the "
        "schedule lists a game on it."
        for network in networks_matching_no_game(match)
    ]


def describe_match(match: dict[str, Any]) -> str:
    parts = []
    if match.get("national_tv"):
        parts.append("national TV")
    for key, label in (("networks", "on"), ("teams", "teams"), ("season_types", "season"), ("labels", "labelled")):
        if match.get(key):
            parts.append(f"{label} {', '.join(str(v) for v in match[key])}")
    if match.get("weekdays"):
        parts.append("on " + ", ".join(WEEKDAYS[int(d)] for d in match["weekdays"]))
    return "; ".join(parts) or "every game"


def lead_time(rule: GameDayRule, service: Service) -> timedelta:
    """Default: the service's provisioning delay plus 15 minutes."""
    if rule.lead_minutes is not None:
        return timedelta(minutes=rule.lead_minutes)
    return timedelta(seconds=service.provisioning_delay_s) + timedelta(minutes=15)


def rule_window(rule: GameDayRule, service: Service, game: Game) -> tuple[datetime, datetime]:
    return game.tip_utc - lead_time(rule, service), game.tip_utc + timedelta(minutes=rule.tail_minutes)


def rule_floor(rule: GameDayRule, service: Service, game: Game, now: datetime) -> int:
    """The absolute floor, or the multiple of the most replicas the policy forecasts over the game's window."""
    if rule.floor_replicas is not None:
        floor = rule.floor_replicas
    else:
        start, end = rule_window(rule, service, game)
        # The learned profile as it is: a floor scheduled for a game days ahead must not follow how tonight runs.
        forecast = reads.forecast_replicas(service, now=now, start=max(start, now), end=end, tonight=False)
        floor = math.ceil((rule.floor_forecast_multiple or 1.0) * forecast - 1e-9)
    # Within the service's bounds, as the engine will hold it (a floor above the maximum had been scheduled
    # and priced at a count the engine never runs).
    return min(max(floor, 1), service.max_replicas)


@dataclass(frozen=True)
class RuleSpec:
    name: str
    match: dict[str, Any]
    services: Sequence[Service]
    reason: str
    floor_replicas: int | None = None
    floor_forecast_multiple: float | None = None
    lead_minutes: int | None = None
    tail_minutes: int = 180
    enabled: bool = True


TEXT_MATCH_KEYS = ("networks", "teams", "season_types", "labels")


def _clean_match(given: dict[str, Any]) -> dict[str, Any]:
    """The match with each key's type checked (it may come as any JSON from the API), blanks and false left out.

    A string where a list belongs would be read letter by letter, and "false" as true, so
    each is refused naming its key; null means the key is not given.
    """
    unknown = set(given) - set(MATCH_KEYS)
    if unknown:
        raise RuleError(f"unknown match key(s): {', '.join(sorted(unknown))}", field="match")
    match: dict[str, Any] = {}
    national_tv = given.get("national_tv")
    if national_tv is not None and not isinstance(national_tv, bool):
        raise RuleError(f"national_tv must be true or false, not {national_tv!r:.60}", field="match.national_tv")
    if national_tv:
        match["national_tv"] = True
    for key in TEXT_MATCH_KEYS:
        values = given.get(key)
        if values is None:
            continue
        if not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
            raise RuleError(
                f'{key} must be a list of names, e.g. ["ESPN", "ABC"], not {values!r:.60}', field=f"match.{key}"
            )
        if kept := [v.strip() for v in values if v.strip()]:
            match[key] = kept
    weekdays = given.get("weekdays")
    if weekdays is not None:
        if not isinstance(weekdays, list | tuple) or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 for d in weekdays
        ):
            raise RuleError(
                f"weekdays must be a list of numbers 0 (Monday) to 6 (Sunday), not {weekdays!r:.60}",
                field="match.weekdays",
            )
        if weekdays:
            match["weekdays"] = sorted(set(weekdays))
    return match


def validate_rule(spec: RuleSpec) -> dict[str, Any]:
    """Check a rule before any write; returns the cleaned match."""
    if not spec.name.strip():
        raise RuleError("a name is required", field="name")
    if not spec.reason.strip():
        raise RuleError("a reason is required", field="reason")
    if not spec.services:
        raise RuleError("choose at least one service", field="services")
    match = _clean_match(spec.match)
    if not match:
        raise RuleError("a rule needs at least one criterion (national TV, network, team, label, ...)", field="match")
    if "teams" in match:
        # A code no game has matches nothing, silently: "LAKERS" for LAL scheduled no floor at all.
        match["teams"] = [team.upper() for team in match["teams"]]
        known = known_teams()
        if unknown := [team for team in match["teams"] if team not in known]:
            raise RuleError(
                f"unknown team code(s) {', '.join(unknown)}; valid codes: {', '.join(sorted(known))}",
                field="match.teams",
            )
    if (spec.floor_replicas is None) == (spec.floor_forecast_multiple is None):
        raise RuleError("give either an absolute floor or a multiple of the forecast", field="floor_replicas")
    if spec.floor_replicas is not None:
        for service in spec.services:
            if not 1 <= spec.floor_replicas <= service.max_replicas:
                # As for a floor made by hand (overrides.check_bounds): the engine holds a floor within the bounds.
                raise RuleError(
                    f"{service.name}: floor must be between 1 and the service's maximum {service.max_replicas} "
                    "(a floor holds within the service's bounds; only a pin may go past them)",
                    field="floor_replicas",
                )
    if spec.floor_forecast_multiple is not None and not 0.1 <= spec.floor_forecast_multiple <= 20:
        raise RuleError("the forecast multiple must be 0.1 to 20", field="floor_forecast_multiple")
    if spec.lead_minutes is not None and not 0 <= spec.lead_minutes <= 24 * 60:
        raise RuleError("lead time must be 0 to 1440 minutes", field="lead_minutes")
    if not 0 < spec.tail_minutes <= 24 * 60:
        raise RuleError("tail must be 1 to 1440 minutes", field="tail_minutes")
    return match


def _rule_snapshot(rule: GameDayRule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "enabled": rule.enabled,
        "match": rule.match,
        "services": sorted(rule.services.values_list("name", flat=True)) if rule.pk else [],
        "floor_replicas": rule.floor_replicas,
        "floor_forecast_multiple": rule.floor_forecast_multiple,
        "lead_minutes": rule.lead_minutes,
        "tail_minutes": rule.tail_minutes,
        "reason": rule.reason,
    }


def _apply_spec(rule: GameDayRule, spec: RuleSpec, match: dict[str, Any]) -> None:
    rule.name = spec.name.strip()
    rule.enabled = spec.enabled
    rule.match = match
    rule.floor_replicas = spec.floor_replicas
    rule.floor_forecast_multiple = spec.floor_forecast_multiple
    rule.lead_minutes = spec.lead_minutes
    rule.tail_minutes = spec.tail_minutes
    rule.reason = spec.reason.strip()


def rule_create(*, spec: RuleSpec, actor: Actor, now: datetime | None = None) -> GameDayRule:
    """Create a rule and schedule its overrides for the coming games, in one transaction."""
    now = now or timezone.now()
    match = validate_rule(spec)
    with transaction.atomic():
        if GameDayRule.objects.filter(name=spec.name.strip()).exists():
            raise RuleError(f"a rule named {spec.name.strip()!r} exists", field="name")
        rule = GameDayRule(created_by_id=actor.user_id)
        _apply_spec(rule, spec, match)
        rule.save()
        rule.services.set(spec.services)
        audit_record(
            actor=actor,
            event_type=EventType.RULE_CREATED,
            object_type="rule",
            object_id=rule.pk,
            after=_rule_snapshot(rule),
            reason=rule.reason,
            at=now,
        )
        rules_apply(actor=actor, now=now, rules=[rule])
    return rule


def _withdraw_generated(rule: GameDayRule, *, actor: Actor, now: datetime, reason: str) -> int:
    """Cancel the rule's generated overrides that have not ended yet."""
    from scaling.overrides import _cancel_locked

    rows = list(
        Override.objects.select_for_update(of=("self",))
        .select_related("service", "game", "rule")
        .filter(rule=rule, status__in=reads.LIVE_STATUSES, ends_at__gt=now)
    )
    for o in rows:
        _cancel_locked(o, actor=actor, reason=reason, now=now)
    return len(rows)


def rule_update(*, rule: GameDayRule, spec: RuleSpec, actor: Actor, now: datetime | None = None) -> bool:
    """Change a rule; its future generated overrides are replaced by ones that follow the new rule."""
    now = now or timezone.now()
    match = validate_rule(spec)
    with transaction.atomic():
        locked = GameDayRule.objects.select_for_update().get(pk=rule.pk)
        before = _rule_snapshot(locked)
        if GameDayRule.objects.filter(name=spec.name.strip()).exclude(pk=locked.pk).exists():
            raise RuleError(f"a rule named {spec.name.strip()!r} exists", field="name")
        _apply_spec(locked, spec, match)
        locked.save()
        locked.services.set(spec.services)
        after = _rule_snapshot(locked)
        if before == after:
            transaction.set_rollback(True)
            return False
        audit_record(
            actor=actor,
            event_type=EventType.RULE_UPDATED,
            object_type="rule",
            object_id=locked.pk,
            before={k: v for k, v in before.items() if after[k] != v},
            after={k: v for k, v in after.items() if before[k] != v},
            reason=locked.reason,
            at=now,
        )
        _withdraw_generated(locked, actor=actor, now=now, reason=RULE_CHANGED)
        if locked.enabled:
            rules_apply(actor=actor, now=now, rules=[locked])
    rule.refresh_from_db()
    return True


def rule_delete(*, rule: GameDayRule, actor: Actor, reason: str, now: datetime | None = None) -> None:
    """Delete a rule and cancel the overrides it scheduled that have not ended."""
    now = now or timezone.now()
    if not reason.strip():
        raise RuleError("a reason is required", field="reason")
    with transaction.atomic():
        locked = GameDayRule.objects.select_for_update().get(pk=rule.pk)
        before = _rule_snapshot(locked)
        cancelled = _withdraw_generated(locked, actor=actor, now=now, reason=f"game-day rule deleted: {reason}")
        audit_record(
            actor=actor,
            event_type=EventType.RULE_DELETED,
            object_type="rule",
            object_id=locked.pk,
            before=before,
            after={"cancelled_overrides": cancelled},
            reason=reason.strip(),
            at=now,
        )
        locked.delete()


def matchup_suffix(away_team: str, home_team: str) -> str:
    """The part of a rule floor's reason that names its game; an import that changes the teams rewrites it."""
    return f" ({away_team} @ {home_team})"


def rules_apply(
    *,
    actor: Actor,
    now: datetime | None = None,
    rules: Iterable[GameDayRule] | None = None,
    games: Iterable[Game] | None = None,
) -> int:
    """Schedule the overrides enabled rules call for, for games within the horizon. Idempotent.

    A (rule, game, service) that already has an override (even one an
    operator cancelled) is left alone; only overrides withdrawn because the
    rule changed are generated again.
    """
    now = now or timezone.now()
    horizon = now + timedelta(days=settings.RULE_HORIZON_DAYS)
    rule_rows = list(rules) if rules is not None else list(GameDayRule.objects.filter(enabled=True))
    rule_rows = [r for r in rule_rows if r.enabled]
    if not rule_rows:
        return 0
    game_rows = Game.objects.filter(
        tip_utc__gt=now - timedelta(hours=24), tip_utc__lt=horizon, postponed=False, tbd=False
    )
    if games is not None:
        game_rows = game_rows.filter(pk__in=[g.pk for g in games])
    candidates = list(game_rows.order_by("tip_utc"))
    created = 0
    with transaction.atomic():
        for rule in rule_rows:
            services = list(rule.services.all())
            taken = set(
                Override.objects.filter(rule=rule)
                .exclude(Q(status=Override.Status.CANCELLED) & Q(cancel_reason=RULE_CHANGED))
                .values_list("game_id", "service_id")
            )
            for game in candidates:
                if not rule_matches(rule.match, game):
                    continue
                for service in services:
                    if (game.pk, service.pk) in taken:
                        continue
                    start, end = rule_window(rule, service, game)
                    if end <= now:
                        continue
                    try:
                        override_create(
                            services=[service],
                            kind=Override.Kind.FLOOR,
                            replicas=rule_floor(rule, service, game, now),
                            starts_at=max(start, now),
                            ends_at=end,
                            reason=f"{rule.name}: {rule.reason}{matchup_suffix(game.away_team, game.home_team)}",
                            actor=actor,
                            admin=True,
                            game=game,
                            rule=rule,
                            now=now,
                        )
                    except OverrideError:
                        continue  # refused (e.g. above an overlapping ceiling): audited by override_create
                    created += 1
    return created
