"""What-if jobs: replay a policy over a service's recorded traffic in a Celery task.

The job's state lives in Redis under `tipoff:whatif:<job id>` for an hour
(status, progress, result); nothing is written to the database, so there is
nothing to audit. The web request only starts the job and reads its state;
the replay itself (scaling.sim.whatif.compare) runs in a worker.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

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


@dataclass(frozen=True)
class WhatIfRequest:
    service_id: int
    start: datetime
    end: datetime
    policy: str  # a built-in name, or "current" (the service's stored engine parameters)
    params: dict[str, Any] | None = None  # edited engine parameters (overrides "current")


def _key(job_id: str) -> str:
    return f"tipoff:whatif:{job_id}"


def _write(job_id: str, state: dict[str, Any]) -> None:
    from scaling.services import redis_client

    redis_client().set(_key(job_id), json.dumps(state, default=str), ex=JOB_TTL_S)


def whatif_state(job_id: str) -> dict[str, Any] | None:
    from scaling.services import redis_client

    raw = redis_client().get(_key(job_id))
    return json.loads(raw) if raw else None


def whatif_start(request: WhatIfRequest) -> str:
    """Validate the request, record it as queued and enqueue the replay; returns the job id."""
    from scaling.tasks import whatif_run

    if request.end <= request.start:
        raise WhatIfError("the range must end after it starts")
    if request.end - request.start > MAX_RANGE:
        raise WhatIfError("the range may span at most 7 days")
    if request.policy not in BUILTIN and request.policy != CURRENT_POLICY:
        raise WhatIfError(f"unknown policy {request.policy!r}")
    if request.params is not None:
        PolicyParams.from_dict(request.params)  # raises ValueError naming the parameter
    job_id = uuid.uuid4().hex
    _write(
        job_id,
        {
            "status": "queued",
            "progress": 0.0,
            "service_id": request.service_id,
            "start": request.start.isoformat(),
            "end": request.end.isoformat(),
            "policy": request.policy,
            "params": request.params,
        },
    )
    whatif_run.delay(job_id)
    return job_id


def _policy(service: Service, name: str, params: dict[str, Any] | None) -> ReplayPolicy:
    if params is not None:
        return EnginePolicy(PolicyParams.from_dict(params), name="tipoff (edited)")
    if name == CURRENT_POLICY:
        return EnginePolicy(PolicyParams.from_dict(service.policy), name="tipoff (current)")
    return BUILTIN[name]()


def whatif_execute(job_id: str) -> str:
    """Run one queued job (called by the Celery task); returns its final status."""
    state = whatif_state(job_id)
    if state is None:
        return "expired"
    service = Service.objects.get(pk=state["service_id"])
    start, end = datetime.fromisoformat(state["start"]), datetime.fromisoformat(state["end"])
    rows = MetricSample.objects.filter(service=service, ts__gte=start, ts__lt=end).order_by("ts")
    samples = [RecordedSample(r.ts, r.rps, r.provisioned, r.ready) for r in rows]
    games = game_specs(start - timedelta(hours=4), end + timedelta(hours=6))

    reported = [-1.0]

    def progress(fraction: float) -> None:
        if fraction - reported[0] >= PROGRESS_STEP:  # a Redis write per 2 %, not per slice of the trace
            reported[0] = fraction
            _write(job_id, {**state, "status": "running", "progress": round(fraction, 3)})

    progress(0.0)
    try:
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
    except BaseException as exc:
        # The time limit, a worker shutting down, a bug: the page must not say "running" until the key expires.
        _write(job_id, {**state, "status": "failed", "error": f"the replay stopped: {type(exc).__name__}"})
        raise
    _write(job_id, {**state, "status": "done", "progress": 1.0, "result": result})
    return "done"
