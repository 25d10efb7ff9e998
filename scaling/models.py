"""Tipoff's records. Writes go through scaling/services.py, reads through selectors.py."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models


class Service(models.Model):
    """One prediction-serving deployment that Tipoff scales."""

    class Backend(models.TextChoices):
        SIMULATED = "simulated", "Simulated fleet"
        SAGEMAKER = "sagemaker", "SageMaker endpoint"
        ECS = "ecs", "ECS service"

    class MetricSourceKind(models.TextChoices):
        SIMULATED = "simulated", "Simulator"
        CLOUDWATCH = "cloudwatch", "CloudWatch"
        PROMETHEUS = "prometheus", "Prometheus"

    class Mode(models.TextChoices):
        ACTIVE = "active", "Active"
        DRY_RUN = "dry_run", "Dry run"
        PAUSED = "paused", "Paused"

    name = models.SlugField(max_length=64, unique=True)
    display_name = models.CharField(max_length=120)
    description = models.CharField(max_length=300, blank=True)
    enabled = models.BooleanField(default=True)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.ACTIVE)
    # When a pause or dry run ends: the first tick at or after it makes the service active again.
    # Null while active (and on a pause recorded before every pause had an end, which then lasts).
    mode_until = models.DateTimeField(null=True, blank=True)
    backend = models.CharField(max_length=16, choices=Backend.choices, default=Backend.SIMULATED)
    metric_source = models.CharField(
        max_length=16, choices=MetricSourceKind.choices, default=MetricSourceKind.SIMULATED
    )
    # Backend identifiers (endpoint + variant, cluster + service, PromQL, region, ...).
    backend_config = models.JSONField(default=dict, blank=True)
    # The AWS resource the service actuates, normalized (scaling.service_config.target_key); null for a
    # simulated fleet. Unique: two services on one endpoint would fight over its count.
    target_key = models.CharField(max_length=600, null=True, blank=True, unique=True, editable=False)

    min_replicas = models.PositiveIntegerField(default=1)
    max_replicas = models.PositiveIntegerField(default=50)
    # A pin may go above max_replicas but never above this.
    hard_max_replicas = models.PositiveIntegerField(default=100)
    price_per_replica_hour = models.FloatField(default=1.0)

    # The serving model of the service (SERVING_MODEL.md).
    service_time_ms = models.FloatField(default=40.0)
    concurrency = models.PositiveIntegerField(default=4)
    provisioning_delay_s = models.PositiveIntegerField(default=180)
    slo_latency_ms = models.FloatField(default=300.0)
    slo_target = models.FloatField(default=0.999)

    # Engine parameters (scaling.policy.PolicyParams as a dict) and their revision.
    policy = models.JSONField(default=dict, blank=True)
    policy_version = models.PositiveIntegerField(default=1)

    # Bumped on every actuation and configuration change: a worker holding a
    # stale version must not act (compare-and-set).
    version = models.PositiveIntegerField(default=1)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.display_name or self.name


class SimulatedFleet(models.Model):
    """State of a simulated service's replicas, shared by every worker process."""

    service = models.OneToOneField(Service, on_delete=models.CASCADE, related_name="sim_fleet")
    # ISO timestamps at which each provisioned replica is (or becomes) ready, oldest first.
    ready_at = models.JSONField(default=list)
    # Demand multiplier for this service relative to the generated curve.
    demand_scale = models.FloatField(default=1.0)
    seed = models.IntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)


class MetricSample(models.Model):
    """What the metric source reported for one service at one instant."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="samples")
    ts = models.DateTimeField()
    rps = models.FloatField(null=True)
    p50_ms = models.FloatField(null=True)
    p95_ms = models.FloatField(null=True)
    p99_ms = models.FloatField(null=True)
    utilization = models.FloatField(null=True)
    in_flight = models.FloatField(null=True)
    error_rate = models.FloatField(null=True)
    ready = models.IntegerField(null=True)
    provisioned = models.IntegerField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["service", "ts"], name="uniq_sample_service_ts")]
        indexes = [models.Index(fields=["service", "-ts"], name="sample_service_ts")]


class MetricRollup(models.Model):
    """One service's samples over one fixed bucket (scaling/rollups.py, ROLLUP_S), summed so that the long
    chart ranges read a few hundred rows a service instead of every sample.

    Means are kept as sum and count (of the samples that have the value), so a mean over merged buckets is
    the mean of their samples, as the charts compute it from samples; maxima stay maxima."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="rollups")
    bucket = models.DateTimeField()  # its start: a whole multiple of ROLLUP_S since the epoch
    samples = models.PositiveIntegerField()
    provisioned_sum = models.BigIntegerField(default=0)
    provisioned_count = models.PositiveIntegerField(default=0)
    ready_sum = models.BigIntegerField(default=0)
    ready_count = models.PositiveIntegerField(default=0)
    rps_sum = models.FloatField(default=0.0)
    rps_count = models.PositiveIntegerField(default=0)
    p50_ms_max = models.FloatField(null=True)
    p95_ms_max = models.FloatField(null=True)
    p99_ms_max = models.FloatField(null=True)

    class Meta:
        # Its index, (service, bucket), is the one the charts' range scan and the retention's delete use.
        constraints = [models.UniqueConstraint(fields=["service", "bucket"], name="uniq_rollup_service_bucket")]


class RollupWatermark(models.Model):
    """How far the rollups have been computed: one row (pk 1), locked by each run so runs take turns."""

    rolled_until = models.DateTimeField(null=True)  # the end of the last bucket computed
    updated_at = models.DateTimeField(auto_now=True)


class Decision(models.Model):
    """One evaluation of one service at one tick, with the engine's explanation."""

    class Actuation(models.TextChoices):
        NONE = "none", "No change"
        PENDING = "pending", "Pending"
        OK = "ok", "Applied"
        ERROR = "error", "Error"
        DRY_RUN = "dry_run", "Dry run"
        BUSY = "busy", "Actuator busy"
        STALE = "stale", "Superseded"
        SKIPPED = "skipped", "Skipped"

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="decisions")
    tick = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    provisioned = models.IntegerField()
    ready = models.IntegerField()
    desired = models.IntegerField()
    recommendation = models.IntegerField(null=True)
    changed = models.BooleanField(default=False)
    reason_code = models.CharField(max_length=40)
    summary = models.CharField(max_length=500)
    explanation = models.JSONField(default=dict)
    mode = models.CharField(max_length=16, default="active")
    actuation = models.CharField(max_length=16, choices=Actuation.choices, default=Actuation.NONE)
    actuation_error = models.TextField(blank=True)
    actuated_at = models.DateTimeField(null=True)
    worker = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["service", "tick"], name="uniq_decision_service_tick")]
        indexes = [models.Index(fields=["service", "-tick"], name="decision_service_tick")]
        ordering = ["-tick"]


class Game(models.Model):
    """A scheduled league game (the calendar the engine pre-warms for)."""

    game_id = models.CharField(max_length=20, unique=True)
    season_type = models.CharField(max_length=40, blank=True)
    tip_utc = models.DateTimeField(db_index=True)
    away_team = models.CharField(max_length=60)
    home_team = models.CharField(max_length=60)
    venue = models.CharField(max_length=120, blank=True)
    national_tv = models.CharField(max_length=120, blank=True)
    label = models.CharField(max_length=120, blank=True)
    sub_label = models.CharField(max_length=120, blank=True)
    postponed = models.BooleanField(default=False)
    # Teams and tip-off not yet set (a knockout round): its tip-off is a placeholder, so neither the engine
    # nor game-day rules plan for it until a schedule import gives it teams and a time.
    tbd = models.BooleanField(default=False)
    # Non-zero only for demo data: last season's schedule replayed this many
    # whole weeks later (weekday and tip-off time kept). Shown on screen.
    shifted_weeks = models.IntegerField(default=0)
    source = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tip_utc"]

    def __str__(self) -> str:
        return f"{self.away_team} @ {self.home_team}"

    @property
    def is_national(self) -> bool:
        return bool(self.national_tv.strip()) and self.national_tv.strip().upper() != "NBA TV"


class GameDayRule(models.Model):
    """Matches games and schedules floors for chosen services around them."""

    name = models.CharField(max_length=120, unique=True)
    enabled = models.BooleanField(default=True)
    # {"networks": [...], "teams": [...], "season_types": [...], "labels": [...], "weekdays": [0..6]}
    match = models.JSONField(default=dict, blank=True)
    services = models.ManyToManyField(Service, related_name="game_day_rules")
    floor_replicas = models.PositiveIntegerField(null=True, blank=True)
    floor_forecast_multiple = models.FloatField(null=True, blank=True)
    lead_minutes = models.PositiveIntegerField(null=True, blank=True)
    tail_minutes = models.PositiveIntegerField(default=180)
    reason = models.CharField(max_length=300)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Override(models.Model):
    """A time-boxed, reasoned human (or rule) constraint on a service's capacity."""

    class Kind(models.TextChoices):
        PIN = "pin", "Pin (exactly N)"
        FLOOR = "floor", "Floor (at least N)"
        CEILING = "ceiling", "Ceiling (at most N)"
        FREEZE_SCALE_IN = "freeze_scale_in", "Freeze scale-in"
        FREEZE = "freeze", "Freeze (hold current)"

    class Status(models.TextChoices):
        PENDING_APPROVAL = "pending_approval", "Pending approval"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        CANCELLED = "cancelled", "Cancelled"

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="overrides")
    # Overrides created together for a group of services share a group id.
    group_id = models.UUIDField(default=uuid.uuid4, db_index=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    replicas = models.PositiveIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=500)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.APPROVED)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="overrides_created"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="overrides_approved"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    bypass_reason = models.CharField(max_length=500, blank=True)
    # Why it needed a second person's approval, in words (its size, or the requester's adjacent overrides it
    # adds to, named), as decided when it was asked for (or extended past a threshold); empty when it needed none.
    approval_needed_because = models.CharField(max_length=500, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="overrides_cancelled"
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=500, blank=True)
    game = models.ForeignKey(Game, null=True, blank=True, on_delete=models.SET_NULL, related_name="overrides")
    rule = models.ForeignKey(GameDayRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="overrides")
    projected_cost_delta = models.FloatField(null=True, blank=True)
    # Counts the changes made to the override (each one audited): an approval may name the version its approver
    # was shown, and is refused when the override changed since (scaling.overrides.override_approve).
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["service", "starts_at", "ends_at"], name="override_window")]
        ordering = ["starts_at"]

    def __str__(self) -> str:
        n = "" if self.replicas is None else f" {self.replicas}"
        return f"{self.get_kind_display()}{n} on {self.service} ({self.starts_at:%Y-%m-%d %H:%M}Z)"


class AuditEvent(models.Model):
    """Append-only, hash-chained record of everything that changed or tried to."""

    class ActorType(models.TextChoices):
        USER = "user", "User"
        TOKEN = "token", "API token"
        SYSTEM = "system", "System"

    created_at = models.DateTimeField(db_index=True)
    actor_type = models.CharField(max_length=10, choices=ActorType.choices)
    # Hashed ids must never change: deleting a user or a service leaves the id
    # in place (no database constraint, no SET NULL), the label keeps the name.
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_label = models.CharField(max_length=200)
    service = models.ForeignKey(
        Service,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="audit_events",
    )
    event_type = models.CharField(max_length=60, db_index=True)
    object_type = models.CharField(max_length=40, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    cost_impact_per_hour = models.FloatField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-id"]
        # The review page seeks on id (newest first) within each filter.
        indexes = [
            models.Index(fields=["service", "-created_at"], name="audit_service_time"),
            models.Index(fields=["service", "-id"], name="audit_service_id"),
            models.Index(fields=["event_type", "-id"], name="audit_type_id"),
            models.Index(fields=["actor_label", "-id"], name="audit_actor_id"),
            models.Index(fields=["object_type", "object_id"], name="audit_object"),
        ]

    def payload(self) -> dict[str, Any]:
        return {
            "created_at": self.created_at.isoformat(),
            "actor_type": self.actor_type,
            "actor_user_id": self.actor_user_id,
            "actor_label": self.actor_label,
            "service_id": self.service_id,
            "event_type": self.event_type,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "before": self.before,
            "after": self.after,
            "reason": self.reason,
            "cost_impact_per_hour": self.cost_impact_per_hour,
        }


class AuditChainHead(models.Model):
    """A single row locked while appending, so the hash chain stays linear."""

    last_hash = models.CharField(max_length=64, default="0" * 64)
    last_event_id = models.BigIntegerField(default=0)


class AuditCheckpoint(models.Model):
    """Where the chain continues after an archive pruned its older events.

    The first remaining event's prev_hash must equal anchor_hash; the archive
    file (whose digest is kept here and in the audit.archived event) holds the rest.
    """

    created_at = models.DateTimeField()
    through_event_id = models.BigIntegerField()
    anchor_hash = models.CharField(max_length=64)
    event_count = models.PositiveIntegerField()
    archive_file = models.CharField(max_length=500)
    archive_sha256 = models.CharField(max_length=64)
    actor_label = models.CharField(max_length=200)

    class Meta:
        ordering = ["-through_event_id"]


class AuditVerification(models.Model):
    """The result of one run of verify_audit (the latest one drives the admin banner)."""

    ran_at = models.DateTimeField(db_index=True)
    ok = models.BooleanField()
    # A full run walks the whole chain; an incremental one starts where the last good run ended.
    full = models.BooleanField(default=True)
    events_checked = models.PositiveIntegerField(default=0)
    first_broken_id = models.BigIntegerField(null=True, blank=True)
    # The last event this run vouched for (where the next incremental run starts).
    through_event_id = models.BigIntegerField(null=True, blank=True)
    through_hash = models.CharField(max_length=64, blank=True)
    # On a broken chain: how many links are broken, the first of them, and that count.
    message = models.CharField(max_length=500)
    broken_count = models.PositiveIntegerField(default=0)
    # The first BREAKS_LISTED broken links in chain order: [{"event_id": 42 or null, "reason": "..."}].
    breaks = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-ran_at", "-id"]


class ApiToken(models.Model):
    """A named, expiring, revocable API credential; only its SHA-256 is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=80)
    # The first characters of the token, shown in lists so a user can tell tokens apart.
    prefix = models.CharField(max_length=16, db_index=True)
    token_sha256 = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="uniq_token_user_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class Capability(models.Model):
    """Holds Tipoff's role permissions; no table. Roles (groups) are granted these."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view", "Read every page and endpoint (no secrets)"),
            ("operate", "Create, cancel and extend overrides within limits; pause and dry-run services"),
            ("approve", "Approve or reject other people's overrides"),
            ("administer", "Change services, policies, game-day rules and users"),
        ]


class PolicyRevision(models.Model):
    """One version of a service's engine parameters: who set it, when and why."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="policy_revisions")
    version = models.PositiveIntegerField()
    params = models.JSONField(default=dict)
    actor_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_label = models.CharField(max_length=200)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["service", "version"], name="uniq_policy_revision_service_version")
        ]
        ordering = ["service", "-version"]


class ActuatorHealth(models.Model):
    """A real backend's circuit breaker and its Application Auto Scaling coexistence state.

    One row per service, written by the AWS actuators; the fleet page reads it to
    show "actuator unavailable" and who owns the capacity.
    """

    service = models.OneToOneField(Service, on_delete=models.CASCADE, related_name="actuator_health")
    consecutive_errors = models.PositiveIntegerField(default=0)
    # Of those, the writes (setting capacity) failed in a row: a read that succeeds does not end their streak.
    write_errors = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    # While set and in the future, the actuator is not called (cool-off).
    open_until = models.DateTimeField(null=True, blank=True)
    last_ok_at = models.DateTimeField(null=True, blank=True)
    # What the backend said about ownership, e.g. "owned by Application Auto Scaling".
    note = models.CharField(max_length=300, blank=True)
    # The scalable target's settings before Tipoff changed them (suspend/bounds), to restore.
    autoscaling_saved = models.JSONField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def unavailable_at(self, now: Any) -> bool:
        return self.open_until is not None and self.open_until > now

    @property
    def unavailable(self) -> bool:
        from django.utils import timezone

        return self.unavailable_at(timezone.now())


class WhatIfRun(models.Model):
    """One what-if replay (scaling.whatif): what was asked and by whom, how far it got, and, once done, the
    comparison the what-if page draws. Its id is the job id of its permalink (`?job=<id hex>`); a run is kept
    WHATIF_KEEP_DAYS after it was queued (the prune_whatif_runs task)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Waiting for a worker"
        RUNNING = "running", "Replaying"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        # It died without saying so (the hard time limit, its worker gone, or no worker took it): judged so by
        # whoever reads it past the instant it must have ended (scaling.whatif).
        KILLED = "killed", "Killed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="whatif_runs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="whatif_runs"
    )
    created_at = models.DateTimeField()  # queued
    started_at = models.DateTimeField(null=True, blank=True)  # a worker took it
    finished_at = models.DateTimeField(null=True, blank=True)
    range_start = models.DateTimeField()
    range_end = models.DateTimeField()
    range_preset = models.CharField(max_length=8, blank=True)  # "6h": the last 6 h when asked; "": typed times
    policy = models.CharField(max_length=40)  # a built-in policy's name, or "current"
    params = models.JSONField(null=True, blank=True)  # edited engine parameters, which replace "current"'s
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)  # of the replay, 0 to 1
    error = models.TextField(blank=True)
    result = models.JSONField(null=True, blank=True)  # scaling.sim.whatif.compare's, when done

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["service", "-created_at"], name="whatif_run_service_time"),
            models.Index(fields=["created_at"], name="whatif_run_created"),
        ]

    def __str__(self) -> str:
        return f"what-if {self.id.hex} on {self.service} ({self.status})"

    @property
    def job_id(self) -> str:
        return self.id.hex

    @property
    def edited(self) -> bool:
        return self.params is not None

    @property
    def shown_range(self) -> tuple[datetime, datetime]:
        """What the run covers: once done, the whole steps of recorded traffic its result replayed (within the
        range asked, which the result states); before, the range asked."""
        if self.status == self.Status.DONE and self.result and self.result.get("start") and self.result.get("end"):
            return datetime.fromisoformat(self.result["start"]), datetime.fromisoformat(self.result["end"])
        return self.range_start, self.range_end
