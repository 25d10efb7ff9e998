"""What-if runs: replay a policy over a service's recorded traffic in a Celery task.

Each run is a WhatIfRun row: what was asked and by whom, its state (queued, running, done, failed, killed),
its progress and, once done, its result; the worker writes each change of state in one UPDATE of that row,
and the page and a run's permalink (the what-if page with `?job=<id>`) read it there. Runs are kept
RUNS_KEPT_DAYS after they were queued (prune_whatif_runs). A run changes no capacity: starting one is not
audited.

Each user may have at most WHATIF_MAX_PER_USER runs queued or running, so that one operator clicking Run
again and again cannot queue replays ahead of everyone else's. The slots are a Redis sorted set per user,
`tipoff:whatif:slots:<user id>`: job ids scored by the instant their slot lapses. A run gives its slot back
when it ends, whatever the end; one that dies without doing so (a worker killed, the hard time limit) loses
it when it lapses: QUEUE_WAIT_LIMIT_S after queueing if no worker took it, or the hard time limit after it
began to run. A run that dies so cannot write its end either: whoever next reads it past the instant its
slot lapsed judges it killed there (_settle_dead), so the page says so as the slot frees.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db.models import F, QuerySet
from django.utils import timezone

from scaling.models import MetricSample, Service, WhatIfRun
from scaling.overrides import both_times
from scaling.policy.types import PolicyParams
from scaling.selectors import game_specs, service_spec
from scaling.sim.policies import BUILTIN, EnginePolicy
from scaling.sim.replay import ReplayPolicy
from scaling.sim.whatif import RecordedSample, WhatIfError, compare

QUEUE_WAIT_LIMIT_S = 3600  # a run no worker has taken in this long is given up, and its slot lapses
RUN_SOFT_TIME_LIMIT_S, RUN_TIME_LIMIT_S = 540, 600  # the Celery task's; the worker kills the run at the second
MAX_RANGE = timedelta(days=7)
CURRENT_POLICY = "current"
PROGRESS_STEP = 0.02  # the page's progress moves in steps of this fraction
RUNS_KEPT_DAYS = 30
RECENT_SHOWN = 20  # runs the page lists per service

Status = WhatIfRun.Status


def _stopped_at(limit_s: int) -> str:
    return f"it stopped at the time limit of {limit_s} s; run it again over a shorter range"


NO_WORKER = f"no worker took it within {QUEUE_WAIT_LIMIT_S // 60} minutes of its queueing; run it again"


@dataclass(frozen=True)
class WhatIfRequest:
    service_id: int
    start: datetime
    end: datetime
    policy: str  # a built-in name, or "current" (the service's stored engine parameters)
    params: dict[str, Any] | None = None  # edited engine parameters (overrides "current")
    preset: str = ""  # the range chosen as "the last <preset>" ending when asked; "" for a typed start and end


class WhatIfRangeError(WhatIfError):
    """The range cannot be replayed; `bound` is the end of it to move ("start" or "end")."""

    def __init__(self, message: str, *, bound: str) -> None:
        super().__init__(message)
        self.bound = bound


class WhatIfUnqueued(WhatIfError):
    """The run could not be queued: Redis (the broker, and the keeper of each person's slots) did not take it."""

    def __init__(self, exc: Exception) -> None:
        super().__init__(
            "The run could not be queued: the what-if worker's broker (Redis) is unreachable or refused it "
            f"({type(exc).__name__}: {exc}). Nothing was started; run it again once the worker and Redis are back."
        )


class WhatIfBusy(Exception):
    """The user already has as many runs queued or running as they may."""

    def __init__(self, runs: list[WhatIfRun], limit: int) -> None:
        self.runs = runs  # those still queued or running, oldest first
        self.limit = limit
        super().__init__(f"{len(runs)} what-if runs already queued or running (at most {limit} at once)")


def _slots_key(user_id: int) -> str:
    return f"tipoff:whatif:slots:{user_id}"


# Counting the user's slots and taking one must be one step, or two clicks at once both see a free slot.
# Returns the ids holding the slots when they are all taken (nothing taken), else an empty list.
_CLAIM_SLOT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local held = redis.call('ZRANGE', KEYS[1], 0, -1)
if #held >= tonumber(ARGV[2]) then
    return held
end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return {}
"""


def _claim_slot(user_id: int, job_id: str, limit: int, now: datetime) -> list[str]:
    """Take one of the user's slots for job_id until no worker could take it any more; the holders' ids if
    none is free."""
    from scaling.services import redis_client

    now_s = now.timestamp()
    lapses_s = now_s + QUEUE_WAIT_LIMIT_S
    held = redis_client().eval(_CLAIM_SLOT, 1, _slots_key(user_id), now_s, limit, job_id, lapses_s, QUEUE_WAIT_LIMIT_S)
    return [h.decode() for h in held]


def _hold_slot_while_running(user_id: int | None, job_id: str, started_s: float) -> None:
    """A running run ends within the hard time limit, dead or alive: its slot lapses then, not an hour on."""
    from scaling.services import redis_client

    if user_id is None:  # its user deleted since
        return
    pipe = redis_client().pipeline()
    pipe.zadd(_slots_key(user_id), {job_id: started_s + RUN_TIME_LIMIT_S}, xx=True)
    pipe.expire(_slots_key(user_id), QUEUE_WAIT_LIMIT_S)  # no slot in the set lapses later: the set goes with its last
    pipe.execute()


def _release_slot(user_id: int | None, job_id: str) -> None:
    from scaling.services import redis_client

    if user_id is not None:
        redis_client().zrem(_slots_key(user_id), job_id)


def _settle_dead(runs: QuerySet[WhatIfRun], now: datetime) -> None:
    """Judge killed those of `runs` that must have ended without saying so, at the instant their slot lapsed:
    one still running at the hard time limit (the worker killed it, or died), one still queued when no
    worker may take it any more. A compare-and-set on the state: a run that wrote its end first keeps it."""
    run_limit, queue_limit = timedelta(seconds=RUN_TIME_LIMIT_S), timedelta(seconds=QUEUE_WAIT_LIMIT_S)
    runs.filter(status=Status.RUNNING, started_at__lte=now - run_limit).update(
        status=Status.KILLED, finished_at=F("started_at") + run_limit, error=_stopped_at(RUN_TIME_LIMIT_S)
    )
    runs.filter(status=Status.QUEUED, created_at__lte=now - queue_limit).update(
        status=Status.KILLED, finished_at=F("created_at") + queue_limit, error=NO_WORKER
    )


def _run_id(job_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(job_id)
    except ValueError:
        return None


def whatif_run_get(job_id: str, *, service_id: int) -> WhatIfRun | None:
    """The service's run with this job id (as its permalink gives it), dead ones judged so; None if none."""
    run_id = _run_id(job_id)
    if run_id is None:
        return None
    runs = WhatIfRun.objects.filter(pk=run_id, service_id=service_id)
    _settle_dead(runs, timezone.now())
    return runs.select_related("service", "created_by").first()


def whatif_runs_recent(service_id: int) -> list[WhatIfRun]:
    """The service's RECENT_SHOWN newest runs, by anyone, dead ones judged so."""
    runs = WhatIfRun.objects.filter(service_id=service_id)
    _settle_dead(runs, timezone.now())
    return list(runs.select_related("created_by").order_by("-created_at")[:RECENT_SHOWN])


def _live_runs(job_ids: list[str]) -> list[WhatIfRun]:
    """Those of the runs holding a user's slots that are still queued or running (not one that has just
    ended and is giving its slot back), oldest first."""
    runs = WhatIfRun.objects.filter(pk__in=[run_id for run_id in map(_run_id, job_ids) if run_id is not None])
    _settle_dead(runs, timezone.now())
    live = runs.filter(status__in=(Status.QUEUED, Status.RUNNING))
    return list(live.select_related("service").order_by("created_at"))


def _check_range(request: WhatIfRequest) -> None:
    """Refuse a range the replay would fail on (WhatIfRangeError) before it takes a slot: one that ends in
    the future, or that holds fewer than two recorded samples with a rate, which the worker needs."""
    now = timezone.now()
    if request.end > now:
        raise WhatIfRangeError(
            f"the range ends in the future ({both_times(request.end)}; it is now {both_times(now)}): "
            "only recorded traffic can be replayed",
            bound="end",
        )
    recorded = MetricSample.objects.filter(
        service_id=request.service_id, ts__gte=request.start, ts__lt=request.end, rps__isnull=False
    )
    found = recorded[:2].count()
    if found < 2:
        kept_from = now - timedelta(days=settings.METRIC_RETENTION_DAYS)
        pick = (
            f"samples are kept {settings.METRIC_RETENTION_DAYS} days, from {both_times(kept_from)}: pick a later one"
            if request.start < kept_from
            else "pick one in which this service recorded traffic"
        )
        raise WhatIfRangeError(
            f"fewer than two recorded samples with a request rate in this range ({found}): {pick}", bound="start"
        )


def whatif_start(request: WhatIfRequest, *, user_id: int) -> str:
    """1. Validate the request: WhatIfRangeError for a range with nothing to replay, WhatIfError or
       ValueError for the rest.
    2. Take one of the user's slots: WhatIfBusy, naming the user's runs, when none is free.
    3. Record the run as queued and enqueue its replay; returns its job id.

    Neither refusal takes a slot, and WhatIfUnqueued says Redis did not answer: before a slot was taken (no run
    recorded), or when the replay was sent (the run recorded as failed, saying so). Called outside a transaction:
    the worker must find the row committed."""
    from redis.exceptions import RedisError

    from scaling.tasks import whatif_run

    if request.end <= request.start:
        raise WhatIfError("the range must end after it starts")
    if request.end - request.start > MAX_RANGE:
        raise WhatIfError("the range may span at most 7 days")
    _check_range(request)
    if request.policy not in BUILTIN and request.policy != CURRENT_POLICY:
        raise WhatIfError(f"unknown policy {request.policy!r}")
    if request.params is not None:
        PolicyParams.from_dict(request.params)  # raises ValueError naming the parameter
    now = timezone.now()
    run_id = uuid.uuid4()
    limit = settings.WHATIF_MAX_PER_USER
    try:
        held = _claim_slot(user_id, run_id.hex, limit, now)
    except RedisError as exc:
        raise WhatIfUnqueued(exc) from exc
    if held:
        raise WhatIfBusy(_live_runs(held), limit)
    try:
        run = WhatIfRun.objects.create(
            id=run_id,
            service_id=request.service_id,
            created_by_id=user_id,
            created_at=now,
            range_start=request.start,
            range_end=request.end,
            policy=request.policy,
            params=request.params,
            range_preset=request.preset,
        )
    except BaseException:
        _release_slot(user_id, run_id.hex)  # nothing was queued
        raise
    try:
        whatif_run.delay(run.job_id)
    except BaseException as exc:
        WhatIfRun.objects.filter(pk=run.pk, status=Status.QUEUED).update(
            status=Status.FAILED, finished_at=timezone.now(), error=f"it could not be queued ({type(exc).__name__})"
        )
        with contextlib.suppress(RedisError):  # the slot lapses with the hour a queued run may wait
            _release_slot(user_id, run.job_id)
        if isinstance(exc, Exception):
            raise WhatIfUnqueued(exc) from exc
        raise
    return run.job_id


def _policy(service: Service, name: str, params: dict[str, Any] | None) -> ReplayPolicy:
    if params is not None:
        return EnginePolicy(PolicyParams.from_dict(params), name="tipoff (edited)")
    if name == CURRENT_POLICY:
        return EnginePolicy(PolicyParams.from_dict(service.policy), name="tipoff (current)")
    return BUILTIN[name]()


def _update(run_id: uuid.UUID, **fields: Any) -> bool:
    """Write to a running run; one judged killed meanwhile (_settle_dead) keeps that verdict."""
    return WhatIfRun.objects.filter(pk=run_id, status=Status.RUNNING).update(**fields) == 1


def whatif_execute(job_id: str) -> str:
    """Run one queued run (called by the Celery task) and give its slot back; returns its final state."""
    run_id = _run_id(job_id)
    if run_id is None:
        return "gone"
    # One instant for the slot's lapse and the run's deadline: the page calls the run killed as its slot frees.
    now = timezone.now()
    # Running from now, before the samples load: a worker killed while they do is then judged dead with its slot.
    taken = WhatIfRun.objects.filter(
        pk=run_id, status=Status.QUEUED, created_at__gt=now - timedelta(seconds=QUEUE_WAIT_LIMIT_S)
    ).update(status=Status.RUNNING, started_at=now, progress=0.0)
    if not taken:  # pruned, or its service deleted; given up waiting; or a second delivery of it
        runs = WhatIfRun.objects.filter(pk=run_id)
        _settle_dead(runs, now)
        status = runs.values_list("status", flat=True).first()
        return "gone" if status is None else str(status)
    run = WhatIfRun.objects.select_related("service").get(pk=run_id)
    _hold_slot_while_running(run.created_by_id, job_id, now.timestamp())
    try:
        return _replay(run)
    finally:
        _release_slot(run.created_by_id, job_id)


def _replay(run: WhatIfRun) -> str:
    reported = [0.0]  # whatif_execute wrote 0 as it started

    def progress(fraction: float) -> None:
        if fraction - reported[0] >= PROGRESS_STEP:  # a write per 2 %, not per slice of the trace
            reported[0] = fraction
            _update(run.pk, progress=round(fraction, 3))

    def finish(status: str, **fields: Any) -> None:
        _update(run.pk, status=status, finished_at=timezone.now(), **fields)

    try:
        service = run.service
        start, end = run.range_start, run.range_end
        rows = MetricSample.objects.filter(service=service, ts__gte=start, ts__lt=end).order_by("ts")
        samples = [RecordedSample(r.ts, r.rps, r.provisioned, r.ready) for r in rows]
        games = game_specs(start - timedelta(hours=4), end + timedelta(hours=6))
        result = compare(
            samples, service_spec(service), _policy(service, run.policy, run.params), games=games, progress=progress
        )
    except (WhatIfError, ValueError) as exc:
        finish(Status.FAILED, error=str(exc))
        return "failed"
    except SoftTimeLimitExceeded:
        finish(Status.FAILED, error=_stopped_at(RUN_SOFT_TIME_LIMIT_S))
        raise
    except BaseException as exc:
        # A worker shutting down, a bug: the page must not say "running" until the hard limit has passed.
        finish(Status.FAILED, error=f"the replay stopped: {type(exc).__name__}")
        raise
    finish(Status.DONE, progress=1.0, result=result)
    return "done"


def whatif_runs_prune(*, now: datetime) -> int:
    """Delete the runs queued more than RUNS_KEPT_DAYS before `now`; returns how many."""
    deleted, _ = WhatIfRun.objects.filter(created_at__lt=now - timedelta(days=RUNS_KEPT_DAYS)).delete()
    return deleted
