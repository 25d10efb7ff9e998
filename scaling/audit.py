"""Audit event types (grouped by domain) and the append-only, hash-chained writer."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from scaling.models import AuditChainHead, AuditCheckpoint, AuditEvent, AuditVerification, Service


class EventType(StrEnum):
    # engine
    DECISION_SCALED = "decision.scaled"
    DECISION_BLOCKED = "decision.blocked"
    DECISION_DRY_RUN = "decision.dry_run"
    # actuators
    ACTUATOR_OK = "actuator.ok"
    ACTUATOR_ERROR = "actuator.error"
    ACTUATOR_BUSY = "actuator.busy"
    ACTUATOR_STALE = "actuator.stale"
    ACTUATOR_UNAVAILABLE = "actuator.unavailable"
    ACTUATOR_RECOVERED = "actuator.recovered"
    # coexistence with AWS Application Auto Scaling
    AUTOSCALING_SUSPENDED = "autoscaling.suspended"
    AUTOSCALING_BOUNDS_SET = "autoscaling.bounds_set"
    AUTOSCALING_RESTORED = "autoscaling.restored"
    # services and policies
    SERVICE_CREATED = "service.created"
    SERVICE_UPDATED = "service.updated"
    SERVICE_MODE_CHANGED = "service.mode_changed"
    POLICY_CHANGED = "policy.changed"
    # overrides
    OVERRIDE_CREATED = "override.created"
    OVERRIDE_APPROVED = "override.approved"
    OVERRIDE_REJECTED = "override.rejected"
    OVERRIDE_STARTED = "override.started"
    OVERRIDE_EXPIRED = "override.expired"
    OVERRIDE_CANCELLED = "override.cancelled"
    OVERRIDE_EXTENDED = "override.extended"
    OVERRIDE_REFUSED = "override.refused"
    OVERRIDE_MOVED = "override.moved"
    OVERRIDE_RETITLED = "override.retitled"
    # schedule
    SCHEDULE_IMPORTED = "schedule.imported"
    RULE_CREATED = "rule.created"
    RULE_UPDATED = "rule.updated"
    RULE_DELETED = "rule.deleted"
    # access
    AUTH_LOGIN = "auth.login"
    AUTH_LOGIN_FAILED = "auth.login_failed"
    AUTH_LOGOUT = "auth.logout"
    AUTH_DENIED = "auth.permission_denied"
    AUTH_LOCKED_OUT = "auth.locked_out"
    TOKEN_CREATED = "token.created"
    TOKEN_REVOKED = "token.revoked"
    TOKEN_USED = "token.used"
    # accounts: who may sign in, and with which role
    USER_CREATED = "user.created"
    USER_UPDATED = "user.updated"
    USER_ROLES_CHANGED = "user.roles_changed"
    USER_PERMISSIONS_CHANGED = "user.permissions_changed"
    USER_PASSWORD_CHANGED = "user.password_changed"
    USER_DELETED = "user.deleted"
    # groups (Tipoff's roles are groups): what each lets its members do
    GROUP_PERMISSIONS_CHANGED = "group.permissions_changed"
    GROUP_DELETED = "group.deleted"
    # stored history: samples and decisions past their retention (scaling/retention.py)
    HISTORY_PRUNED = "history.pruned"
    # audit itself
    AUDIT_ARCHIVED = "audit.archived"


@dataclass(frozen=True)
class Actor:
    """Who did it: a user, an API token (acting for its user), or the system."""

    type: str
    label: str
    user_id: int | None = None

    @classmethod
    def system(cls, identity: str = "tipoff") -> Actor:
        return cls(AuditEvent.ActorType.SYSTEM, f"system:{identity}")

    @classmethod
    def for_user(cls, user: Any) -> Actor:
        return cls(AuditEvent.ActorType.USER, user.get_username(), user.pk)

    @classmethod
    def for_token(cls, token: Any) -> Actor:
        return cls(AuditEvent.ActorType.TOKEN, f"{token.user.get_username()} (token {token.name})", token.user_id)

    @classmethod
    def for_request(cls, request: Any) -> Actor:
        """The API token when the request authenticated with one, else the logged-in user."""
        token = getattr(request, "api_token", None)
        return cls.for_token(token) if token is not None else cls.for_user(request.user)


@dataclass(frozen=True)
class AccountChanger:
    """Who changes accounts inside an `account_changes_by` block, why, and at what instant (None: now)."""

    actor: Actor
    reason: str
    at: datetime | None = None


# Accounts change through Django's models (the admin, single sign-on, the shell), so their audit events are
# written by model signals (dashboard/signals.py), which cannot be handed an actor; this says who it is.
_account_changer: ContextVar[AccountChanger | None] = ContextVar("tipoff_account_changer", default=None)


@contextmanager
def account_changes_by(actor: Actor, reason: str, *, at: datetime | None = None) -> Iterator[None]:
    """Attribute the account changes made inside the block to `actor`, with `reason`."""
    token = _account_changer.set(AccountChanger(actor, reason, at))
    try:
        yield
    finally:
        _account_changer.reset(token)


def account_changer() -> AccountChanger:
    """Who is changing accounts now; outside any block, a management command or the shell."""
    return _account_changer.get() or AccountChanger(
        Actor.system("manage.py"), "changed outside Tipoff's pages (a command or the shell)"
    )


GENESIS_HASH = "0" * 64


def canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False).encode()


def chain_hash(prev_hash: str, payload: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(payload)).hexdigest()


def _jsonb_number(literal: str) -> float | int:
    """A JSON number with a fraction or exponent, as it reads back from PostgreSQL jsonb.

    jsonb keeps the number as `numeric`, which writes no exponent and has no negative
    zero: Python's 1e+16 (every float from 1e16 up is written with an exponent) comes
    back as 10000000000000000, read as an int, and -0.0 as 0.0. Every other float reads
    back as itself.
    """
    number = Decimal(literal)
    if number.is_zero():
        return 0.0
    if int(number.as_tuple().exponent) >= 0:  # no digits after the point: numeric's scale is 0
        return int(number)
    return float(literal)


def jsonb_value(value: Any) -> Any:
    """`value` as PostgreSQL's jsonb gives it back, so a hash over it still holds after the round trip."""
    return json.loads(canonical({"v": value}), parse_float=_jsonb_number)["v"]


def audit_record(
    *,
    actor: Actor,
    event_type: EventType,
    service: Service | None = None,
    object_type: str = "",
    object_id: str | int = "",
    before: Any = None,
    after: Any = None,
    reason: str = "",
    cost_impact_per_hour: float | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Append one event to the chain. Must run inside the transaction of the change it records."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records")
    head, _ = AuditChainHead.objects.get_or_create(pk=1)
    head = AuditChainHead.objects.select_for_update().get(pk=1)
    event = AuditEvent(
        # UTC, so the hashed isoformat is the one the database gives back.
        created_at=(at or timezone.now()).astimezone(UTC),
        actor_type=actor.type,
        actor_user_id=actor.user_id,
        actor_label=actor.label,
        service=service,
        event_type=str(event_type),
        object_type=object_type,
        object_id=str(object_id),
        before=before,
        after=after,
        reason=reason,
        cost_impact_per_hour=cost_impact_per_hour,
        prev_hash=head.last_hash,
    )
    # Hash exactly what the database will give back (only before/after are jsonb).
    event.before = jsonb_value(before)
    event.after = jsonb_value(after)
    event.hash = chain_hash(head.last_hash, event.payload())
    event.save(force_insert=True)
    head.last_hash = event.hash
    head.last_event_id = event.pk
    head.save(update_fields=["last_hash", "last_event_id"])
    return event


# --- Verification -------------------------------------------------------------


# How many broken links a report names one by one; past these it only counts them.
BREAKS_LISTED = 20


@dataclass(frozen=True)
class ChainBreak:
    """One broken link: the event where the chain stops holding (None when no event can be named) and why."""

    event_id: int | None
    reason: str


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    events_checked: int
    # one line for people: on a broken chain, how many links are broken and the first of them
    message: str
    first_broken_id: int | None = None
    # the last event vouched for, where an incremental run can start next time
    through_event_id: int | None = None
    through_hash: str = ""
    # every broken link counts; the first BREAKS_LISTED are named, in chain order
    broken_count: int = 0
    breaks: tuple[ChainBreak, ...] = ()


def _broken(checked: int, event_id: int | None, message: str) -> ChainReport:
    return ChainReport(
        ok=False,
        events_checked=checked,
        first_broken_id=event_id,
        message=message,
        broken_count=1,
        breaks=(ChainBreak(event_id, message),),
    )


class _Breaks:
    """The broken links a walk finds: all counted, the first BREAKS_LISTED kept."""

    def __init__(self) -> None:
        self.count = 0
        self.listed: list[ChainBreak] = []

    def add(self, event_id: int | None, reason: str) -> None:
        self.count += 1
        if len(self.listed) < BREAKS_LISTED:
            self.listed.append(ChainBreak(event_id, reason))

    def report(self, checked: int, start: str) -> ChainReport:
        first = self.listed[0]
        links = "1 broken link" if self.count == 1 else f"{self.count} broken links"
        first_is = ":" if self.count == 1 else "; the first:"
        return ChainReport(
            ok=False,
            events_checked=checked,
            message=f"{links} in {checked} events walked from {start}{first_is} {first.reason}",
            first_broken_id=first.event_id,
            broken_count=self.count,
            breaks=tuple(self.listed),
        )


# The hashed fields, in AuditEvent.payload() order; read as tuples: building model instances was a third of the time.
PAYLOAD_FIELDS = (
    "created_at",
    "actor_type",
    "actor_user_id",
    "actor_label",
    "service_id",
    "event_type",
    "object_type",
    "object_id",
    "before",
    "after",
    "reason",
    "cost_impact_per_hour",
)
_CHAIN_FIELDS = ("id", "prev_hash", "hash", *PAYLOAD_FIELDS)


def payload_of(values: list[Any]) -> dict[str, Any]:
    """AuditEvent.payload() from a values_list row of PAYLOAD_FIELDS (a test keeps the two equal)."""
    payload = dict(zip(PAYLOAD_FIELDS, values, strict=True))
    payload["created_at"] = payload["created_at"].isoformat()
    return payload


def verify_chain(*, chunk_size: int = 5000, resume_from: tuple[int, str] | None = None) -> ChainReport:
    """Recompute the chain and name its broken links: how many, and the first BREAKS_LISTED of them.

    1. Start from the newest archive checkpoint's anchor hash (or the genesis hash),
       or, for an incremental run, from `resume_from` (an event id and hash an earlier
       run vouched for; that event must still be there with that hash).
    2. Walk the events by id: each must name the previous event's hash as its
       prev_hash (a deleted or inserted event breaks this) and hash to its own
       stored hash (an altered event breaks this).
    3. After a break, carry on from the stored hash of the event just walked, as
       the next event was chained to it: one altered or deleted event is one broken
       link, not a break at every event after it. When what changed is an event's
       stored hash, its content still gives the hash the next event was chained to;
       that one is accepted too, so the edit is not counted twice.
    4. The last event must be the one the chain head names: this catches the
       newest events being deleted, or events appended behind the head's back.
       Events committed while the walk runs are walked too.
    """
    checkpoint = AuditCheckpoint.objects.order_by("-through_event_id").first()
    expected_prev = checkpoint.anchor_hash if checkpoint else GENESIS_HASH
    after_id = checkpoint.through_event_id if checkpoint else 0
    start = f"archive checkpoint after #{after_id}" if checkpoint else "the start of the chain"
    breaks = _Breaks()
    if resume_from is not None and resume_from[0] > after_id:
        resume_id, resume_hash = resume_from
        still = AuditEvent.objects.filter(pk=resume_id).values_list("hash", flat=True).first()
        if still != resume_hash:
            breaks.add(resume_id, f"event #{resume_id}, where the last verification ended, was deleted or altered")
        expected_prev, after_id, start = resume_hash, resume_id, f"event #{resume_id} (verified earlier)"
    # the hash an event's content gives when it differs from its stored hash (step 3)
    content_hash: str | None = None
    checked = 0
    while True:
        batch = list(AuditEvent.objects.filter(id__gt=after_id).order_by("id").values_list(*_CHAIN_FIELDS)[:chunk_size])
        for event_id, prev_hash, stored_hash, *content in batch:
            computed = chain_hash(prev_hash, payload_of(content))
            linked, intact = prev_hash in (expected_prev, content_hash), computed == stored_hash
            if not (linked and intact):
                where = f"event #{after_id}" if checked else start
                why = [] if linked else [f"does not link to {where}: an event was deleted or inserted here"]
                why += [] if intact else ["was altered: its content no longer matches its hash"]
                breaks.add(event_id, f"event #{event_id} {', and '.join(why)}")
            content_hash = None if intact else computed
            expected_prev, after_id = stored_hash, event_id
            checked += 1
        if batch:
            continue
        head = AuditChainHead.objects.filter(pk=1).first()
        head_id, head_hash = (head.last_event_id, head.last_hash) if head else (0, GENESIS_HASH)
        if head_id > after_id and AuditEvent.objects.filter(id__gt=after_id).exists():
            continue  # appended while we walked
        if head_id > after_id:
            breaks.add(
                head_id,
                f"the chain head names event #{head_id} but the log ends at #{after_id}: newest events were deleted",
            )
        elif head_id < after_id:
            first_extra = AuditEvent.objects.filter(id__gt=head_id).order_by("id").values_list("id", flat=True).first()
            breaks.add(first_extra, f"event #{first_extra} is past the chain head (#{head_id}): it was inserted")
        elif head_hash not in (expected_prev, content_hash):
            breaks.add(after_id, f"event #{after_id} does not match the chain head's hash")
        if breaks.count:
            return breaks.report(checked, start)
        return ChainReport(
            ok=True,
            events_checked=checked,
            message=f"{checked} events verified from {start}, chain intact",
            through_event_id=after_id,
            through_hash=expected_prev,
        )


def verify_and_record(*, now: datetime | None = None, full: bool = True) -> AuditVerification:
    """Run verify_chain and keep its result (the latest one drives the admins' banner).

    An incremental run (full=False) starts where the last good run ended; it falls
    back to a full run when there is none, or when the latest run found the chain
    broken (so the alarm cannot clear itself by skipping the broken part).
    """
    latest = latest_verification()
    resume = None
    if not full and latest is not None and latest.ok and latest.through_event_id is not None:
        resume = (latest.through_event_id, latest.through_hash)
    report = verify_chain(resume_from=resume)
    return AuditVerification.objects.create(
        ran_at=now or timezone.now(),
        ok=report.ok,
        full=resume is None,
        events_checked=report.events_checked,
        first_broken_id=report.first_broken_id,
        through_event_id=report.through_event_id,
        through_hash=report.through_hash,
        message=report.message[:500],
        broken_count=report.broken_count,
        breaks=[{"event_id": b.event_id, "reason": b.reason} for b in report.breaks],
    )


def verify_is_due_in_full(now: datetime) -> bool:
    """A full walk at least every AUDIT_FULL_VERIFY_SECONDS; incremental runs in between."""
    from datetime import timedelta

    from django.conf import settings

    since = now - timedelta(seconds=settings.AUDIT_FULL_VERIFY_SECONDS)
    return not AuditVerification.objects.filter(full=True, ran_at__gte=since).exists()


def latest_verification() -> AuditVerification | None:
    return AuditVerification.objects.order_by("-ran_at", "-id").first()


# --- Archive (the one sanctioned way to remove events) -----------------------

ARCHIVE_FORMAT = "tipoff-audit-archive/1"


class AuditChainBroken(Exception):
    """The chain does not verify; refuse to archive (or trust) it."""


@dataclass(frozen=True)
class ArchiveResult:
    path: Path
    sha256: str
    event_count: int
    through_event_id: int
    anchor_hash: str


def _event_line(event: AuditEvent) -> str:
    record = {"id": event.pk, "prev_hash": event.prev_hash, "hash": event.hash, "payload": event.payload()}
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str) + "\n"


def audit_archive(
    *, actor: Actor, before: datetime, out_dir: Path, now: datetime | None = None
) -> ArchiveResult | None:
    """Export the events older than `before` to a file, then prune them; None when there is nothing to archive.

    1. Verify the whole chain first: a broken chain is never archived.
    2. Under the chain-head lock, take the longest run of oldest events created before `before`.
    3. Write them (with their hashes) to a new JSON-lines file and fsync it.
    4. Record an audit.archived event and a checkpoint whose anchor is the last
       archived hash, so the remaining chain still verifies.
    5. Delete the archived rows; on PostgreSQL the append-only trigger lets this
       transaction through only because it sets tipoff.audit_archive locally.
    """
    now = now or timezone.now()
    report = verify_chain()
    if not report.ok:
        raise AuditChainBroken(report.message)
    with transaction.atomic():
        AuditChainHead.objects.get_or_create(pk=1)
        AuditChainHead.objects.select_for_update().get(pk=1)
        checkpoint = AuditCheckpoint.objects.order_by("-through_event_id").first()
        after_id = checkpoint.through_event_id if checkpoint else 0
        remaining = AuditEvent.objects.filter(id__gt=after_id)
        first_young = remaining.filter(created_at__gte=before).order_by("id").values_list("id", flat=True).first()
        old = remaining if first_young is None else remaining.filter(id__lt=first_young)
        through_id = old.aggregate(last=Max("id"))["last"]
        if through_id is None:
            return None
        old = remaining.filter(id__lte=through_id)

        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"audit-{after_id + 1:012d}-{through_id:012d}-{now:%Y%m%dT%H%M%SZ}.jsonl"
        digest = hashlib.sha256()
        count, anchor = 0, checkpoint.anchor_hash if checkpoint else GENESIS_HASH
        start_prev = anchor
        with path.open("x", encoding="utf-8") as fh:  # never overwrite an earlier archive
            header = {"format": ARCHIVE_FORMAT, "start_prev_hash": start_prev, "through_event_id": through_id}
            line = json.dumps(header, sort_keys=True) + "\n"
            fh.write(line)
            digest.update(line.encode())
            for event in old.order_by("id").iterator(chunk_size=5000):
                line = _event_line(event)
                fh.write(line)
                digest.update(line.encode())
                count, anchor = count + 1, event.hash
            fh.flush()
            os.fsync(fh.fileno())
        sha = digest.hexdigest()

        audit_record(
            actor=actor,
            event_type=EventType.AUDIT_ARCHIVED,
            object_type="audit_archive",
            object_id=through_id,
            after={"through_event_id": through_id, "events": count, "file": path.name, "sha256": sha, "anchor": anchor},
            reason=f"archived {count} events created before {before.isoformat()}",
        )
        AuditCheckpoint.objects.create(
            created_at=now,
            through_event_id=through_id,
            anchor_hash=anchor,
            event_count=count,
            archive_file=str(path),
            archive_sha256=sha,
            actor_label=actor.label,
        )
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET LOCAL tipoff.audit_archive = 'on'")
            old.delete()
            if connection.vendor == "postgresql":
                cursor.execute("SET LOCAL tipoff.audit_archive = 'off'")
    return ArchiveResult(path=path, sha256=sha, event_count=count, through_event_id=through_id, anchor_hash=anchor)


def _archived_event(line: str) -> dict[str, Any] | None:
    """One event line of an archive, or None when the line is not one."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not (isinstance(record, dict) and {"id", "prev_hash", "hash", "payload"} <= record.keys()):
        return None
    return record


def verify_archive_file(path: Path) -> ChainReport:
    """Recompute the chain inside one archive file and match it to its checkpoint, naming every broken line
    (as `verify_chain` does for the database): after a break the walk goes on from that line's own hash."""
    digest = hashlib.sha256()
    checked = 0
    breaks = _Breaks()
    try:
        with path.open(encoding="utf-8") as fh:
            header_line = fh.readline()
            digest.update(header_line.encode())
            try:
                header = json.loads(header_line)
            except json.JSONDecodeError:
                return _broken(0, None, f"{path}: line 1 is not an archive header")
            if not (
                isinstance(header, dict)
                and header.get("format") == ARCHIVE_FORMAT
                and isinstance(header.get("start_prev_hash"), str)
                and isinstance(header.get("through_event_id"), int)
            ):
                return _broken(0, None, f"{path}: line 1 is not a {ARCHIVE_FORMAT} header")
            expected_prev = header["start_prev_hash"]
            content_hash: str | None = None  # what the last line's content hashes to, when not its stored hash
            for lineno, line in enumerate(fh, start=2):
                digest.update(line.encode())
                record = _archived_event(line)
                if record is None:
                    breaks.add(None, f"{path}:{lineno}: not an archived event")
                    continue
                checked += 1
                computed = chain_hash(record["prev_hash"], record["payload"])
                # As the database walk: a line after an altered one may link to either of its hashes, so that
                # one edit (its content or its stored hash) counts once.
                linked, intact = record["prev_hash"] in (expected_prev, content_hash), computed == record["hash"]
                if not (linked and intact):
                    why = ([] if linked else ["does not link"]) + ([] if intact else ["was altered"])
                    breaks.add(record["id"], f"{path}:{lineno}: event #{record['id']} {', and '.join(why)}")
                content_hash = None if intact else computed
                expected_prev = record["hash"]
    except UnicodeDecodeError:
        return _broken(checked, None, f"{path}: not UTF-8 text, so not an archive written by archive_audit")
    checkpoint = AuditCheckpoint.objects.filter(through_event_id=header["through_event_id"]).first()
    if checkpoint is None:
        breaks.add(None, f"{path}: no checkpoint records an archive through #{header['through_event_id']}")
    elif checkpoint.archive_sha256 != digest.hexdigest() or checkpoint.anchor_hash != expected_prev:
        breaks.add(None, f"{path}: does not match its checkpoint (digest or last hash differs)")
    if breaks.count:
        return breaks.report(checked, f"the start of {path.name}")
    return ChainReport(ok=True, events_checked=checked, message=f"{path.name}: {checked} events verified")
