"""What-if runs: at most WHATIF_MAX_PER_USER per user queued or running, however the clicks arrive, a slot
comes back even from a run that died holding it, and each run is kept in the database, judged killed when it
died without saying so, until it is pruned."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from scaling import tasks
from scaling.models import MetricSample, Service, WhatIfRun
from scaling.whatif import (
    QUEUE_WAIT_LIMIT_S,
    RUN_TIME_LIMIT_S,
    RUNS_KEPT_DAYS,
    WhatIfBusy,
    WhatIfRangeError,
    WhatIfRequest,
    WhatIfUnqueued,
    whatif_execute,
    whatif_run_get,
)
from tests.factories import make_service, make_user, make_whatif_run

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("whatif_slots_free")]

QUEUED_AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    jobs: list[str] = []
    monkeypatch.setattr(tasks.whatif_run, "delay", jobs.append)
    return jobs


@pytest.fixture
def start() -> Callable[[int], str]:
    from scaling.whatif import whatif_start

    service: Service = make_service("win-probability")
    # Recorded traffic over an hour past both now and QUEUED_AT, which the tests travel to.
    end = min(timezone.now(), QUEUED_AT) - timedelta(minutes=5)
    MetricSample.objects.bulk_create(
        MetricSample(service=service, ts=end - timedelta(seconds=15 * i), rps=450.0) for i in range(1, 241)
    )

    def start(user_id: int) -> str:
        request = WhatIfRequest(service_id=service.pk, start=end - timedelta(hours=1), end=end, policy="hpa")
        return whatif_start(request, user_id=user_id)

    return start


def _read(job_id: str) -> WhatIfRun:
    """The run as the page reads it."""
    run = whatif_run_get(job_id, service_id=WhatIfRun.objects.get(pk=job_id).service_id)
    assert run is not None
    return run


@pytest.mark.django_db(transaction=True)  # each click's thread reads the recorded samples on its own connection
def test_simultaneous_starts_take_no_more_slots_than_the_cap(
    start: Callable[[int], str], queued: list[str], settings: Any
) -> None:
    from django.db import connection

    settings.WHATIF_MAX_PER_USER = 3
    user_id = make_user().pk
    clicks = 16
    ready = threading.Barrier(clicks)

    def click(_: int) -> str:
        ready.wait()  # all at once
        try:
            return start(user_id)
        except WhatIfBusy:
            return "refused"
        finally:
            connection.close()

    with ThreadPoolExecutor(clicks) as pool:
        outcomes = list(pool.map(click, range(clicks)))
    assert outcomes.count("refused") == clicks - 3
    assert sorted(o for o in outcomes if o != "refused") == sorted(queued)


def test_a_refusal_names_the_jobs_that_hold_the_slots(start: Callable[[int], str], queued: list[str]) -> None:
    user_id = make_user().pk
    first, second = start(user_id), start(user_id)
    with pytest.raises(WhatIfBusy) as refused:
        start(user_id)
    assert [run.job_id for run in refused.value.runs] == [first, second] and refused.value.limit == 2
    assert {run.status for run in refused.value.runs} == {"queued"}
    assert WhatIfRun.objects.get(pk=first).created_by_id == user_id


def test_a_job_no_worker_takes_gives_its_slot_back_and_is_killed_when_no_worker_may_take_it(
    start: Callable[[int], str], queued: list[str]
) -> None:
    user_id = make_user().pk
    with time_machine.travel(QUEUED_AT, tick=False) as traveller:
        start(user_id)
        start(user_id)
        traveller.shift(timedelta(seconds=QUEUE_WAIT_LIMIT_S - 1))
        with pytest.raises(WhatIfBusy):
            start(user_id)
        traveller.shift(timedelta(seconds=2))
        start(user_id)
        run = _read(queued[0])
        assert run.status == "killed" and "no worker took it within 60 minutes" in run.error
        assert run.finished_at == QUEUED_AT + timedelta(seconds=QUEUE_WAIT_LIMIT_S)
        # A worker that takes it at last runs nothing: the page already said it was killed.
        assert whatif_execute(queued[0]) == "killed"
        assert _read(queued[0]).started_at is None


def test_a_job_killed_while_running_gives_its_slot_back_by_the_hard_time_limit(
    start: Callable[[int], str], queued: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import scaling.whatif

    user_id = make_user().pk
    with time_machine.travel(QUEUED_AT, tick=False) as traveller:
        start(user_id)
        start(user_id)
        # Killed by the hard time limit or with its worker: the job never reaches the line that frees the slot.
        monkeypatch.setattr(scaling.whatif, "_release_slot", lambda user_id, job_id: None)
        whatif_execute(queued[0])
        traveller.shift(timedelta(seconds=RUN_TIME_LIMIT_S - 1))
        with pytest.raises(WhatIfBusy):
            start(user_id)
        traveller.shift(timedelta(seconds=2))
        start(user_id)  # long before the hour a queued job's slot lasts


def test_a_job_the_broker_refused_gives_its_slot_back(
    start: Callable[[int], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broker_down(job_id: str) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.whatif_run, "delay", broker_down)
    user_id = make_user().pk
    for _ in range(3):
        with pytest.raises(WhatIfUnqueued, match=r"could not be queued: .* \(ConnectionError: broker down\)"):
            start(user_id)
    # Kept, saying why it never ran, rather than "waiting for a worker" for an hour.
    assert set(WhatIfRun.objects.values_list("status", "error")) == {
        ("failed", "it could not be queued (ConnectionError)")
    }
    monkeypatch.setattr(tasks.whatif_run, "delay", lambda job_id: None)
    start(user_id)
    start(user_id)


@pytest.mark.parametrize(
    ("ends_in", "recorded", "bound"),
    [(timedelta(hours=1), 240, "end"), (-timedelta(minutes=1), 1, "start"), (-timedelta(minutes=1), 0, "start")],
)
def test_a_range_with_nothing_to_replay_is_refused_before_it_takes_a_slot(
    queued: list[str], ends_in: timedelta, recorded: int, bound: str
) -> None:
    from scaling.whatif import whatif_start

    service = make_service("win-probability")
    now = timezone.now()
    MetricSample.objects.bulk_create(
        MetricSample(service=service, ts=now - timedelta(seconds=15 * i), rps=450.0) for i in range(1, recorded + 1)
    )
    MetricSample.objects.create(service=service, ts=now - timedelta(seconds=7), rps=None, provisioned=3)  # no rate
    user_id = make_user().pk
    request = WhatIfRequest(service_id=service.pk, start=now - timedelta(hours=1), end=now + ends_in, policy="hpa")

    for _ in range(3):  # more than the two slots
        with pytest.raises(WhatIfRangeError) as refused:
            whatif_start(request, user_id=user_id)
        assert refused.value.bound == bound
    assert queued == [] and not WhatIfRun.objects.exists()


def test_a_job_killed_while_its_samples_load_is_running_from_its_start(
    start: Callable[[int], str], queued: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A reviewer's finding: "running" and its start were written only once the samples had loaded, so a worker
    # killed while they did left "Waiting for a worker..." for an hour, its slot long since freed.
    import scaling.whatif

    user_id = make_user().pk
    with time_machine.travel(QUEUED_AT, tick=False) as traveller:
        start(user_id)

        def killed(*args: Any, **kwargs: Any) -> Any:
            raise SystemExit  # the worker going down mid-query: nothing after it runs

        monkeypatch.setattr(scaling.whatif, "_release_slot", lambda user_id, job_id: None)
        monkeypatch.setattr(scaling.whatif, "game_specs", killed)
        monkeypatch.setattr(scaling.whatif, "_update", lambda run_id, **fields: False)  # nor its end
        with pytest.raises(SystemExit):
            whatif_execute(queued[0])
        run = _read(queued[0])
        assert run.status == "running" and run.started_at == QUEUED_AT
        traveller.shift(timedelta(seconds=RUN_TIME_LIMIT_S - 1))
        assert _read(queued[0]).status == "running"
        traveller.shift(timedelta(seconds=1))
        run = _read(queued[0])
        assert run.status == "killed" and f"stopped at the time limit of {RUN_TIME_LIMIT_S} s" in run.error
        assert run.finished_at == QUEUED_AT + timedelta(seconds=RUN_TIME_LIMIT_S)


def test_a_run_is_kept_in_the_database_after_redis_forgets_it(start: Callable[[int], str], queued: list[str]) -> None:
    from scaling.services import redis_client

    user_id = make_user().pk
    with time_machine.travel(QUEUED_AT, tick=False) as traveller:
        job_id = start(user_id)
        assert whatif_execute(job_id) == "done"
        redis_client().flushdb()
        traveller.shift(timedelta(days=RUNS_KEPT_DAYS))
        run = _read(job_id)
    assert run.status == "done" and run.result is not None and run.result["policy"] == "hpa"
    assert run.created_by_id == user_id and run.created_at == QUEUED_AT and run.policy == "hpa"
    assert run.started_at == QUEUED_AT and run.finished_at == QUEUED_AT and run.progress == 1.0
    assert run.range_end - run.range_start == timedelta(hours=1)


def test_a_run_judged_killed_keeps_that_verdict_when_its_worker_writes_late(
    start: Callable[[int], str], queued: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import scaling.whatif

    user_id = make_user().pk
    with time_machine.travel(QUEUED_AT, tick=False) as traveller:
        job_id = start(user_id)
        compare = scaling.whatif.compare

        def slow(*args: Any, **kwargs: Any) -> Any:
            traveller.shift(timedelta(seconds=RUN_TIME_LIMIT_S))
            _read(job_id)  # the page, reading it past the hard time limit
            return compare(*args, **kwargs)

        monkeypatch.setattr(scaling.whatif, "compare", slow)
        whatif_execute(job_id)
        run = _read(job_id)
    assert run.status == "killed" and run.result is None


def test_the_periodic_task_deletes_runs_older_than_30_days(queued: list[str]) -> None:
    service = make_service("win-probability")
    make_whatif_run(service, created_at=QUEUED_AT - timedelta(days=RUNS_KEPT_DAYS, seconds=1), status="done")
    kept = [
        make_whatif_run(service, created_at=QUEUED_AT - timedelta(days=RUNS_KEPT_DAYS), status="failed"),
        make_whatif_run(service, created_at=QUEUED_AT - timedelta(days=1)),
    ]
    with time_machine.travel(QUEUED_AT, tick=False):
        assert tasks.prune_whatif_runs() == 1
    assert set(WhatIfRun.objects.values_list("pk", flat=True)) == {run.pk for run in kept}
    schedule = tasks.beat_schedule()["prune_whatif_runs"]
    assert schedule["task"] == tasks.prune_whatif_runs.name and schedule["schedule"] <= 24 * 3600
