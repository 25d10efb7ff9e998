"""How long metric samples and decisions are kept, and the prune that holds them to it.

Every service writes a sample and a decision every tick: 5,760 of each a day at 15 s. Samples are kept
METRIC_RETENTION_DAYS and decisions DECISION_RETENTION_DAYS; the hourly prune_history task (and
`manage.py prune_history`, by hand) deletes older ones.

The control tick writes to both tables every tick, so no DELETE may hold their locks for long: the prune
deletes BATCH_ROWS rows at a time by primary key, each DELETE committed on its own, one service at a time and
oldest first (the (service, ts) and (service, tick) indexes find them), until none is left or its time budget
is spent; the next run goes on from there.

Each run that deleted anything is one history.pruned audit event with its counts and cutoffs: history going
away is a change an operator may have to account for, and a by-hand run names who ran it. Audit events
themselves are not touched (archive_audit prunes those): the events about a pruned decision still say what
was recorded about it, and the chain still verifies.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import QuerySet

from scaling import selectors, whatif
from scaling.audit import Actor, EventType, audit_record
from scaling.models import Decision, MetricSample, Service
from scaling.rollups import rollups_prune

BATCH_ROWS = 5000
# A beat run stops deleting after this long, so a backlog (the first run after an upgrade, or a retention
# shortened) is cleared over several hours rather than holding a control worker's slot for minutes.
TIME_BUDGET_S = 60.0


# --- What Tipoff reads back, which the retention must cover ----------------------------------------------


@dataclass(frozen=True)
class Reader:
    """Something that reads stored history back, and how far."""

    what: str
    reach: timedelta


def sample_readers() -> tuple[Reader, ...]:
    return (
        # The fit reads the week before its refit period started (less the samples still settling), so up to
        # a period more than the week itself (selectors.traffic_forecaster).
        Reader(
            "the engine's learning window (FORECAST_LEARN_WINDOW, read back from the start of a 6 h refit period)",
            selectors.FORECAST_LEARN_WINDOW
            + timedelta(seconds=selectors.FORECAST_REFIT_S)
            + selectors.FORECAST_SAMPLES_SETTLED,
        ),
        Reader("the longest chart range", max(selectors.RANGES.values())),
        Reader("the longest what-if replay (the page's last 7d)", whatif.MAX_RANGE),
    )


def decision_readers() -> tuple[Reader, ...]:
    # The charts mark each decision and draw each decision's forecast beside the demand that came.
    return (Reader("the longest chart range (its decision markers and forecasts)", max(selectors.RANGES.values())),)


def _in_words(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def check_retention(variable: str, days: int, readers: tuple[Reader, ...]) -> None:
    """Refuse a retention shorter than the longest reach of `readers`, naming the variable and that reader."""
    reach = max(r.reach for r in readers)
    if timedelta(days=days) >= reach:
        return
    longest = [r.what for r in readers if r.reach == reach]
    verb = "reaches" if len(longest) == 1 else "each reach"
    whole_days = math.ceil(reach / timedelta(days=1))
    raise ImproperlyConfigured(
        f"{variable}={days} is shorter than what Tipoff reads back: {_in_words(longest)} {verb} "
        f"{whole_days} days; set it to {whole_days} or more"
    )


def check_retention_settings() -> None:
    check_retention("METRIC_RETENTION_DAYS", settings.METRIC_RETENTION_DAYS, sample_readers())
    check_retention("DECISION_RETENTION_DAYS", settings.DECISION_RETENTION_DAYS, decision_readers())


# --- The prune ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cutoffs:
    samples_before: datetime
    decisions_before: datetime


def history_cutoffs(now: datetime) -> Cutoffs:
    return Cutoffs(
        samples_before=now - timedelta(days=settings.METRIC_RETENTION_DAYS),
        decisions_before=now - timedelta(days=settings.DECISION_RETENTION_DAYS),
    )


@dataclass(frozen=True)
class Counts:
    samples: int = 0
    decisions: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.samples + other.samples, self.decisions + other.decisions)

    @property
    def total(self) -> int:
        return self.samples + self.decisions


@dataclass(frozen=True)
class PruneResult:
    cutoffs: Cutoffs
    by_service: dict[str, Counts] = field(default_factory=dict)
    finished: bool = True  # False: the time budget ran out with old rows left, for the next run

    @property
    def counts(self) -> Counts:
        return sum(self.by_service.values(), Counts())


def _old_rows(service_id: int, cutoffs: Cutoffs) -> Iterator[tuple[str, QuerySet[MetricSample] | QuerySet[Decision]]]:
    """Each table's rows of one service older than its cutoff, oldest first."""
    samples = MetricSample.objects.filter(service_id=service_id, ts__lt=cutoffs.samples_before).order_by("ts")
    decisions = Decision.objects.filter(service_id=service_id, tick__lt=cutoffs.decisions_before).order_by("tick")
    yield "samples", samples
    yield "decisions", decisions


def _services() -> list[tuple[int, str]]:
    # Disabled services too: their history stays (and is pruned) like any other's.
    return list(Service.objects.order_by("pk").values_list("pk", "name"))


def history_to_prune(*, now: datetime) -> PruneResult:
    """What a prune at `now` would delete, per service (the command's dry run); deletes nothing."""
    cutoffs = history_cutoffs(now)
    by_service = {}
    for service_id, name in _services():
        found = {table: rows.count() for table, rows in _old_rows(service_id, cutoffs)}
        if any(found.values()):
            by_service[name] = Counts(**found)
    return PruneResult(cutoffs=cutoffs, by_service=by_service)


def history_prune(
    *,
    actor: Actor,
    now: datetime,
    batch_rows: int = BATCH_ROWS,
    time_budget_s: float | None = TIME_BUDGET_S,
    clock: Callable[[], float] = time.monotonic,
) -> PruneResult:
    """Delete the samples and decisions older than their retention at `now`.

    1. For each service, take the primary keys of its oldest `batch_rows` samples older than the cutoff and
       delete those rows in one statement, committed on its own; again until none is left. Then its decisions.
    2. Stop once `time_budget_s` is spent (None: never), leaving the rest for the next run.
    3. Delete the rollups of buckets wholly before the samples' cutoff (sums of samples already counted, so
       neither counted nor audited on their own).
    4. When anything was deleted, record one history.pruned audit event with the counts.
    """
    cutoffs = history_cutoffs(now)
    deadline = None if time_budget_s is None else clock() + time_budget_s
    deleted: dict[str, dict[str, int]] = {}
    finished = True
    for service_id, name in _services():
        for table, rows in _old_rows(service_id, cutoffs):
            while finished:
                batch = list(rows.values_list("pk", flat=True)[:batch_rows])
                if not batch:
                    break
                if deadline is not None and clock() >= deadline:
                    finished = False
                    break
                count, _ = rows.model.objects.filter(pk__in=batch).delete()
                deleted.setdefault(name, {"samples": 0, "decisions": 0})[table] += count
    # The rollups of the samples gone go with them: one statement, a few hundred rows a service a day.
    rollups_prune(before=cutoffs.samples_before)
    result = PruneResult(
        cutoffs=cutoffs, by_service={name: Counts(**counts) for name, counts in deleted.items()}, finished=finished
    )
    if result.counts.total:
        _audit(actor, result)
    return result


def _audit(actor: Actor, result: PruneResult) -> None:
    counts, cutoffs = result.counts, result.cutoffs
    with transaction.atomic():
        audit_record(
            actor=actor,
            event_type=EventType.HISTORY_PRUNED,
            after={
                "samples": counts.samples,
                "decisions": counts.decisions,
                "samples_before": cutoffs.samples_before.isoformat(),
                "decisions_before": cutoffs.decisions_before.isoformat(),
                "by_service": {
                    name: {"samples": c.samples, "decisions": c.decisions} for name, c in result.by_service.items()
                },
                "finished": result.finished,
            },
            reason=(
                f"deleted {counts.samples} metric samples older than {settings.METRIC_RETENTION_DAYS} days "
                f"and {counts.decisions} decisions older than {settings.DECISION_RETENTION_DAYS} days"
                + ("" if result.finished else "; the time budget ran out, the next run goes on")
            ),
        )
