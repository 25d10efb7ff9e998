"""The learned demand model each process keeps: the same in every process, refit when the calendar changes,
and shared between processes through Redis (the "shared" cache) so that one fits it, not each."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from django.core.cache import caches
from django.db.models import F

from scaling import selectors
from scaling.models import Game, MetricSample, Service
from scaling.policy import Forecaster
from tests.factories import make_service

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 1, 16, 3, tzinfo=UTC)


def _tips(service: Service) -> list[datetime]:
    """A game at 00:30 UTC on each of the three nights before the service's refit period holding NOW."""
    start = _period_start(service)
    night = start.replace(hour=0, minute=30, second=0, microsecond=0)
    return [night - timedelta(days=d) for d in range(1, 4)]


def _period_start(service: Service) -> datetime:
    return selectors.refit_period_start(service.pk, selectors.refit_period(service.pk, NOW))


def _rps(t: datetime, tips: list[datetime]) -> float:
    """100 rps, and 300 more through two hours from each tip-off."""
    return 100.0 + sum(300.0 for tip in tips if tip <= t < tip + timedelta(hours=2))


def _record(service: Service, start: datetime, end: datetime, tips: list[datetime]) -> None:
    stamps = [start + timedelta(minutes=i) for i in range(int((end - start) / timedelta(minutes=1)))]
    MetricSample.objects.bulk_create(MetricSample(service=service, ts=t, rps=_rps(t, tips)) for t in stamps)


@pytest.fixture(autouse=True)
def shared_cache(settings: Any) -> None:
    """The real Redis, under a prefix of this test's own: what an earlier test (or run) shared is not seen."""
    settings.CACHES = {**settings.CACHES, "shared": {**settings.CACHES["shared"], "KEY_PREFIX": f"test-{uuid4()}"}}


@pytest.fixture
def service() -> Iterator[Service]:
    """A service with four days of game-night traffic up to its refit period's start, its games in the calendar."""
    service = make_service()
    tips = _tips(service)
    for i, tip in enumerate(tips):
        Game.objects.create(game_id=f"g{i}", tip_utc=tip, away_team="BOS", home_team="NYK")
    start = _period_start(service)
    _record(service, start - timedelta(days=4), start, tips)
    yield service
    selectors._forecasters.clear()


@pytest.fixture
def fits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the real `Forecaster.fit`'s calls."""
    calls: list[int] = []
    real = Forecaster.fit.__func__  # type: ignore[attr-defined]

    def counted(cls: type[Forecaster], *args: object, **kwargs: object) -> Forecaster:
        calls.append(1)
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(Forecaster, "fit", classmethod(counted))
    return calls


def _model(forecaster: Forecaster | None) -> Forecaster:
    assert forecaster is not None and forecaster.learned
    return forecaster


def test_two_processes_fitting_at_different_moments_of_a_period_hold_the_same_model(service: Service) -> None:
    start = _period_start(service)
    first = _model(selectors.traffic_forecaster(service, start + timedelta(minutes=1)))
    # The other pool process first asks three hours on, after three more hours of samples and a game tonight.
    selectors._forecasters.clear()
    _record(service, start, start + timedelta(hours=3), [start])
    second = _model(selectors.traffic_forecaster(service, start + timedelta(hours=3)))
    assert second is not first and second == first
    instants = [start + timedelta(minutes=m) for m in range(-90, 240, 30)]
    games = selectors.game_specs(start - timedelta(hours=6), start + timedelta(hours=6))
    assert [second.predict(t, games) for t in instants] == [first.predict(t, games) for t in instants]


def test_without_a_calendar_change_a_period_fits_once(service: Service, fits: list[int]) -> None:
    start = _period_start(service)
    for minutes in (1, 60, 180, 359):
        _model(selectors.traffic_forecaster(service, start + timedelta(minutes=minutes)))
    assert len(fits) == 1
    _model(selectors.traffic_forecaster(service, start + timedelta(hours=6, minutes=1)))  # the next period
    assert len(fits) == 2


def _add(tips: list[datetime]) -> None:
    Game.objects.create(game_id="g-new", tip_utc=tips[0] + timedelta(hours=1), away_team="LAL", home_team="DEN")


def _move(tips: list[datetime]) -> None:
    game = Game.objects.get(game_id="g1")
    game.tip_utc += timedelta(hours=1)
    game.save()


def _postpone(tips: list[datetime]) -> None:
    game = Game.objects.get(game_id="g1")
    game.postponed = True
    game.save()


def _delete(tips: list[datetime]) -> None:
    Game.objects.filter(game_id="g1").delete()


@pytest.mark.parametrize("change", [_add, _move, _postpone, _delete])
def test_a_calendar_change_refits_at_the_next_call_of_the_same_period(
    service: Service, fits: list[int], change: Callable[[list[datetime]], None]
) -> None:
    start = _period_start(service)
    before = _model(selectors.traffic_forecaster(service, start + timedelta(minutes=1)))
    change(_tips(service))
    after = _model(selectors.traffic_forecaster(service, start + timedelta(minutes=2)))
    assert len(fits) == 2 and after != before
    # ... and what another process fits after the change is that same model.
    selectors._forecasters.clear()
    assert _model(selectors.traffic_forecaster(service, start + timedelta(hours=2))) == after


def test_another_process_reads_the_fit_shared_through_redis_rather_than_fitting_again(
    service: Service, fits: list[int]
) -> None:
    start = _period_start(service)
    first = _model(selectors.traffic_forecaster(service, start + timedelta(minutes=1)))
    selectors._forecasters.clear()  # another process: the web process pricing a preview, say
    second = _model(selectors.traffic_forecaster(service, start + timedelta(minutes=30)))
    assert len(fits) == 1 and second is not first and second == first


def test_samples_added_to_the_history_afterwards_are_fitted_not_read_from_the_shared_fit(
    service: Service, fits: list[int]
) -> None:
    start = _period_start(service)
    first = _model(selectors.traffic_forecaster(service, start + timedelta(minutes=1)))
    # A backfill: samples the history did not hold when the first process fitted (a recorder catching up).
    MetricSample.objects.filter(service=service, ts__gte=start - timedelta(days=1)).update(rps=F("rps") * 2)
    selectors._forecasters.clear()
    second = _model(selectors.traffic_forecaster(service, start + timedelta(minutes=30)))
    assert len(fits) == 2 and second != first


def test_with_redis_unreachable_each_process_fits_its_own(
    service: Service, fits: list[int], settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.CACHES = {**settings.CACHES, "shared": {**settings.CACHES["shared"], "LOCATION": "redis://127.0.0.1:1/0"}}
    start = _period_start(service)
    first = _model(selectors.traffic_forecaster(service, start + timedelta(minutes=1)))
    selectors._forecasters.clear()
    second = _model(selectors.traffic_forecaster(service, start + timedelta(minutes=30)))
    assert len(fits) == 2 and second == first
    assert "fitting here" in caplog.text and "not shared" in caplog.text


def test_a_shared_fit_of_another_shape_is_fitted_again(service: Service, fits: list[int]) -> None:
    start = _period_start(service)
    first = _model(selectors.traffic_forecaster(service, start + timedelta(minutes=1)))
    (key,) = _shared_keys(service)
    caches["shared"].set(key, {**first.state(), "renamed_field": 1})
    selectors._forecasters.clear()
    assert _model(selectors.traffic_forecaster(service, start + timedelta(minutes=30))) == first
    assert len(fits) == 2


def _shared_keys(service: Service) -> list[str]:
    cache = caches["shared"]
    prefix = cache.make_key(f"forecaster:{service.pk}:")
    client = cache._cache.get_client()  # type: ignore[attr-defined]
    return [k.decode().removeprefix(cache.make_key("")) for k in client.scan_iter(f"{prefix}*")]


PLANTED: list[str] = []


def planted() -> str:
    """What a pickle planted in Redis would call, were it unpickled."""
    PLANTED.append("ran")
    return "ran"


class _Payload:
    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (planted, ())


def test_the_shared_fit_is_json_and_a_pickle_planted_in_redis_is_never_unpickled(
    service: Service, fits: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    start = _period_start(service)
    first = _model(selectors.traffic_forecaster(service, start + timedelta(minutes=1)))
    (key,) = _shared_keys(service)
    cache = caches["shared"]
    client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]
    stored = client.get(cache.make_key(key))
    assert Forecaster.from_state(json.loads(stored)) == first  # plain JSON, whichever process reads it

    client.set(cache.make_key(key), pickle.dumps(_Payload()))  # someone who can write to Redis
    selectors._forecasters.clear()
    assert _model(selectors.traffic_forecaster(service, start + timedelta(minutes=30))) == first
    assert PLANTED == [] and len(fits) == 2 and "fitting here" in caplog.text
