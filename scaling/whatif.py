"""What-if jobs: replay a policy over a service's recorded traffic in a Celery task.

The job's state lives in Redis under `tipoff:whatif:<job id>` for an hour
(status, progress, result); nothing is written to the database, so there is
nothing to audit. The web request only starts the job and reads its state;
the replay itself (scaling.sim.whatif.compare) runs in a worker.

Each user may have at most WHATIF_MAX_PER_USER jobs queued or running, so that
one operator clicking Run again and again cannot queue replays ahead of
everyone else's. The slots are a Redis sorted set per user, `tipoff:whatif:slots:<user id>`:
job ids scored by the instant their slot lapses. A job gives its slot back when it
ends, whatever the end; a job that dies without doing so (a worker killed, the hard
time limit) loses it when it lapses, an hour after queueing as its state does, or
the hard time limit after it began to run. A job killed at the hard limit cannot write its
end either: its state says "running" until it expires, so a reader takes a job still running
past the limit (the instant its slot lapses) as stopped there (whatif_state).

A job's permalink is the what-if page with `?job=<id>`; the page lists the user's recent jobs
on the service from `tipoff:whatif:recent:<user id>`, job ids scored by the instant they were
queued, for as long as their state lasts (whatif_recent).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.utils import timezone

from scaling.models import MetricSample, Service
from scaling.policy.types import PolicyParams
from scaling.selectors import game_specs, service_spec
from scaling.sim.policies import BUILTIN, EnginePolicy
from scaling.sim.replay import ReplayPolicy
from scaling.sim.whatif import RecordedSample, WhatIfError, compare

JOB_TTL_S = 3600
RUN_SOFT_TIME_LIMIT_S, RUN_TIME_LIMIT_S = 540, 600  # the Celery task's; the worker kills the job at the second
MAX_RANGE = timedelta(days=7)
CURRENT_POLICY = "current"
PROGRESS_STEP = 0.02  # the page's progress moves in steps of this fraction
# The longest a job's state may last after it is queued: an hour waiting for a worker, the hard time limit
# running, then an hour after its last write.
STATE_LASTS_AT_MOST_S = 2 * JOB_TTL_S + RUN_TIME_LIMIT_S
RECENT_KEPT = 20  # recent jobs remembered per user, across services


def _stopped_at(limit_s: int) -> str:
    return f"it stopped at the time limit of {limit_s} s; run it again over a shorter range"


@dataclass(frozen=True)
class WhatIfRequest:
    service_id: int
    start: datetime
    end: datetime
    policy: str  # a built-in name, or "current" (the service's stored engine parameters)
    params: dict[str, Any] | None = None  # edited engine parameters (overrides "current")


class WhatIfRangeError(WhatIfError):
    """The range cannot be replayed; `bound` is the end of it to move ("start" or "end")."""

    def __init__(self, message: str, *, bound: str) -> None:
        super().__init__(message)
        self.bound = bound


class WhatIfBusy(Exception):
    """The user already has as many jobs queued or running as they may."""

    def __init__(self, jobs: dict[str, dict[str, Any]], limit: int) -> None:
        self.jobs = jobs  # job id -> its state, for the jobs still queued or running
        self.limit = limit
        super().__init__(f"{len(jobs)} what-if jobs already queued or running (at most {limit} at once)")


def _key(job_id: str) -> str:
    return f"tipoff:whatif:{job_id}"


def _slots_key(user_id: int) -> str:
    return f"tipoff:whatif:slots:{user_id}"


def _recent_key(user_id: int) -> str:
    return f"tipoff:whatif:recent:{user_id}"


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


def _claim_slot(user_id: int, job_id: str, limit: int) -> list[str]:
    """Take one of the user's slots for job_id until the job's state expires; the holders' ids if none is free."""
    from scaling.services import redis_client

    now = time.time()
    held = redis_client().eval(_CLAIM_SLOT, 1, _slots_key(user_id), now, limit, job_id, now + JOB_TTL_S, JOB_TTL_S)
    return [h.decode() for h in held]


def _hold_slot_while_running(user_id: int | None, job_id: str, started_s: float) -> None:
    """A running job ends within the hard time limit, dead or alive: its slot lapses then, not an hour on."""
    from scaling.services import redis_client

    if user_id is None:  # queued before there were slots
        return
    pipe = redis_client().pipeline()
    pipe.zadd(_slots_key(user_id), {job_id: started_s + RUN_TIME_LIMIT_S}, xx=True)
    pipe.expire(_slots_key(user_id), JOB_TTL_S)  # no slot in the set lapses later: the set goes with its last
    pipe.execute()


def _release_slot(user_id: int | None, job_id: str) -> None:
    from scaling.services import redis_client

    if user_id is not None:
        redis_client().zrem(_slots_key(user_id), job_id)


def _write(job_id: str, state: dict[str, Any]) -> None:
    from scaling.services import redis_client

    redis_client().set(_key(job_id), json.dumps(state, default=str), ex=JOB_TTL_S)


def whatif_state(job_id: str) -> dict[str, Any] | None:
    """The job's state; a job still "running" past the hard time limit is dead (the worker killed it
    before it could say so) and is given as failed there."""
    from scaling.services import redis_client

    raw = redis_client().get(_key(job_id))
    if not raw:
        return None
    state: dict[str, Any] = json.loads(raw)
    started_s = state.get("run_started_epoch_s")
    if state["status"] == "running" and started_s is not None and time.time() >= started_s + RUN_TIME_LIMIT_S:
        return {**state, "status": "failed", "error": _stopped_at(RUN_TIME_LIMIT_S)}
    return state


def _check_range(request: WhatIfRequest) -> None:
    """Refuse a range the replay would fail on (WhatIfRangeError) before it takes a slot: one that ends in
    the future, or that holds fewer than two recorded samples with a rate, which the worker needs."""
    now = timezone.now()
    if request.end > now:
        raise WhatIfRangeError(
            f"the range ends in the future ({request.end:%Y-%m-%d %H:%M} UTC; it is now {now:%Y-%m-%d %H:%M} UTC): "
            "only recorded traffic can be replayed",
            bound="end",
        )
    recorded = MetricSample.objects.filter(
        service_id=request.service_id, ts__gte=request.start, ts__lt=request.end, rps__isnull=False
    )
    found = recorded[:2].count()
    if found < 2:
        raise WhatIfRangeError(
            f"fewer than two recorded samples with a request rate in this range ({found}): "
            "pick one in which this service recorded traffic",
            bound="start",
        )


def whatif_start(request: WhatIfRequest, *, user_id: int) -> str:
    """Validate the request, take one of the user's slots, record the job as queued and enqueue
    the replay; returns the job id. Raises WhatIfRangeError for a range with nothing to replay and
    WhatIfBusy, naming the user's jobs, when no slot is free; neither takes a slot."""
    from scaling.services import redis_client
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
    job_id = uuid.uuid4().hex
    limit = settings.WHATIF_MAX_PER_USER
    held = _claim_slot(user_id, job_id, limit)
    if held:
        states = {held_id: whatif_state(held_id) for held_id in held}
        # Not one that has just ended and is giving its slot back.
        live = {
            held_id: state for held_id, state in states.items() if state and state["status"] in ("queued", "running")
        }
        raise WhatIfBusy(live, limit)
    try:
        _write(
            job_id,
            {
                "status": "queued",
                "progress": 0.0,
                "service_id": request.service_id,
                "user_id": user_id,
                "start": request.start.isoformat(),
                "end": request.end.isoformat(),
                "policy": request.policy,
                "params": request.params,
            },
        )
        whatif_run.delay(job_id)
    except BaseException:
        _release_slot(user_id, job_id)  # nothing was queued
        raise
    queued_s = time.time()
    pipe = redis_client().pipeline()
    pipe.zadd(_recent_key(user_id), {job_id: queued_s})
    pipe.zremrangebyscore(_recent_key(user_id), "-inf", queued_s - STATE_LASTS_AT_MOST_S)
    pipe.zremrangebyrank(_recent_key(user_id), 0, -RECENT_KEPT - 1)
    pipe.expire(_recent_key(user_id), STATE_LASTS_AT_MOST_S)
    pipe.execute()
    return job_id


def whatif_recent(user_id: int, service_id: int) -> list[tuple[str, dict[str, Any]]]:
    """The user's jobs on the service whose state is still kept, newest first: (job id, state)."""
    from scaling.services import redis_client

    newest_first = cast("list[bytes]", redis_client().zrevrange(_recent_key(user_id), 0, -1))
    ids = [job_id.decode() for job_id in newest_first]
    states = ((job_id, whatif_state(job_id)) for job_id in ids)
    return [(job_id, state) for job_id, state in states if state is not None and state["service_id"] == service_id]


def _policy(service: Service, name: str, params: dict[str, Any] | None) -> ReplayPolicy:
    if params is not None:
        return EnginePolicy(PolicyParams.from_dict(params), name="tipoff (edited)")
    if name == CURRENT_POLICY:
        return EnginePolicy(PolicyParams.from_dict(service.policy), name="tipoff (current)")
    return BUILTIN[name]()


def whatif_execute(job_id: str) -> str:
    """Run one queued job (called by the Celery task) and give its slot back; returns its final status."""
    state = whatif_state(job_id)
    if state is None:
        return "expired"  # its slot lapsed with it
    # One instant for the slot's lapse and the state's deadline: the page calls the job dead as its slot frees.
    started_s = time.time()
    _hold_slot_while_running(state.get("user_id"), job_id, started_s)
    # Running from now, before the samples load: a worker killed while they do is then judged dead with its slot.
    state = {**state, "run_started_epoch_s": started_s, "status": "running", "progress": 0.0}
    _write(job_id, state)
    try:
        return _replay(job_id, state)
    finally:
        _release_slot(state.get("user_id"), job_id)


def _replay(job_id: str, state: dict[str, Any]) -> str:
    reported = [0.0]  # whatif_execute wrote 0 as it started

    def progress(fraction: float) -> None:
        if fraction - reported[0] >= PROGRESS_STEP:  # a Redis write per 2 %, not per slice of the trace
            reported[0] = fraction
            _write(job_id, {**state, "status": "running", "progress": round(fraction, 3)})

    try:
        service = Service.objects.get(pk=state["service_id"])
        start, end = datetime.fromisoformat(state["start"]), datetime.fromisoformat(state["end"])
        rows = MetricSample.objects.filter(service=service, ts__gte=start, ts__lt=end).order_by("ts")
        samples = [RecordedSample(r.ts, r.rps, r.provisioned, r.ready) for r in rows]
        games = game_specs(start - timedelta(hours=4), end + timedelta(hours=6))
        result = compare(
            samples,
            service_spec(service),
            _policy(service, state["policy"], state["params"]),
            games=games,
            progress=progress,
        )
    except (WhatIfError, ValueError) as exc:
        _write(job_id, {**state, "status": "failed", "error": str(exc)})
        return "failed"
    except SoftTimeLimitExceeded:
        _write(job_id, {**state, "status": "failed", "error": _stopped_at(RUN_SOFT_TIME_LIMIT_S)})
        raise
    except BaseException as exc:
        # A worker shutting down, a bug: the page must not say "running" until the key expires.
        _write(job_id, {**state, "status": "failed", "error": f"the replay stopped: {type(exc).__name__}"})
        raise
    _write(job_id, {**state, "status": "done", "progress": 1.0, "result": result})
    return "done"
