"""Audit review benchmark: 1,000,000 chained events on PostgreSQL, then the review page timed.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tipoff_audit_bench \\
        .venv/bin/python bench/audit_review.py [--events 1000000] [--repeat 7] [--keep]

1. Migrate the database named by DATABASE_URL (use a scratch database: the
   audit tables are truncated first) and generate N events over a year with a
   valid hash chain: 4 services, system workers, users and API tokens as actors,
   every event-type domain, free-text reasons. Rows go in with COPY.
2. Time the review page (/audit/) server-side through Django's test client,
   logged in as a viewer: first page, each filter alone, filters combined,
   free text common and rare, a deep page (seek), the API, and a streamed
   CSV export of one day. Median and worst of --repeat runs.
3. Time verify_audit over the whole chain.
4. Write bench/AUDIT.md (machine, figures, query plans of the slowest case).

A benchmark, not a test: the suite does not run it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("TIPOFF_ALLOW_INSECURE_SECRET", "1")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from scaling.audit import GENESIS_HASH, PAYLOAD_FIELDS, canonical, chain_hash, verify_chain  # noqa: E402
from scaling.models import AuditChainHead, AuditEvent, Service  # noqa: E402

SERVICES = ("win-probability", "player-props", "live-odds", "game-summaries")
USERS = ("operator", "approver", "admin", "ops-lead", "oncall-1", "oncall-2")
WORKERS = tuple(f"system:celery@worker-{i}" for i in range(1, 9))
RARE_WORD = "zamboni"  # appears in about 1 event in 20,000

# (event_type, weight, actor kind, object_type)
MIX = (
    ("decision.scaled", 30, "system", "decision"),
    ("decision.blocked", 12, "system", "decision"),
    ("decision.dry_run", 4, "system", "decision"),
    ("actuator.ok", 30, "system", "decision"),
    ("actuator.error", 2, "system", "decision"),
    ("override.created", 5, "user", "override"),
    ("override.approved", 2, "user", "override"),
    ("override.started", 3, "system", "override"),
    ("override.expired", 3, "system", "override"),
    ("override.cancelled", 1, "user", "override"),
    ("policy.changed", 1, "user", "service"),
    ("schedule.imported", 1, "system", "schedule"),
    ("auth.login", 3, "user", ""),
    ("auth.login_failed", 1, "user", ""),
    ("token.used", 2, "token", "api_token"),
)
REASONS = {
    "decision": [
        "p95 {p} ms above the {slo} ms SLO: scale out to {n}",
        "pre-warm for tip-off of {game} in {m} minutes",
        "halftime surge forecast: {n} replicas",
        "scale in held: stabilization window (300 s)",
        "metrics stale: hold",
    ],
    "override": [
        "marquee game {game}: floor {n}",
        "halftime surge test on {game}",
        "pin {n} for the playoff double-header",
        "release freeze for model v{m}",
    ],
    "service": ["tighten the SLO guard", "raise max replicas for the season"],
    "schedule": ["league feed refresh"],
    "": ["", ""],
    "api_token": [""],
}
GAMES = ("LAL @ BOS", "GSW @ DEN", "NYK @ MIA", "DAL @ PHX", "MIL @ PHI", "OKC @ MIN")


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    with connection.cursor() as c:
        c.execute("SHOW server_version")
        pg = c.fetchone()[0]
        c.execute("SHOW shared_buffers")
        buffers = c.fetchone()[0]
    return {
        "cpu": f"{cpu} ({os.cpu_count()} logical CPUs)",
        "memory": mem,
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgresql": f"{pg} (shared_buffers {buffers}, default settings), same machine",
        "load average when run": " ".join(f"{x:.1f}" for x in os.getloadavg())
        + " (other work was running on the machine: figures are upper bounds)",
    }


def generate(n: int, seed: int = 7) -> float:
    """Truncate the audit tables and COPY n chained events in; returns seconds."""
    rng = random.Random(seed)
    started = time.perf_counter()
    services = {}
    for name in SERVICES:
        services[name] = Service.objects.get_or_create(name=name, defaults={"display_name": name})[0].pk
    with connection.cursor() as c:
        # TRUNCATE is not a row DELETE: the append-only trigger does not fire (a scratch database only).
        c.execute("TRUNCATE scaling_auditevent, scaling_auditcheckpoint, scaling_auditverification RESTART IDENTITY")
    weights = [w for _, w, _, _ in MIX]
    t0 = datetime(2025, 11, 1, tzinfo=UTC)
    step_s = 365 * 24 * 3600 / n
    prev = GENESIS_HASH
    columns = ["id", *PAYLOAD_FIELDS, "prev_hash", "hash"]
    raw = connection.connection  # the psycopg connection
    with raw.cursor() as cur, cur.copy(f"COPY scaling_auditevent ({', '.join(columns)}) FROM STDIN") as copy:
        for i in range(1, n + 1):
            event_type, _, actor_kind, object_type = rng.choices(MIX, weights=weights)[0]
            created = t0 + timedelta(seconds=int(i * step_s), microseconds=rng.randrange(1_000_000))
            created = created.replace(microsecond=created.microsecond)
            service_name = rng.choice(SERVICES) if object_type in ("decision", "override", "service") else None
            service_id = services[service_name] if service_name else None
            if actor_kind == "system":
                label, actor_type = rng.choice(WORKERS), "system"
            elif actor_kind == "token":
                user = rng.choice(USERS)
                label, actor_type = f"{user} (token release-pipeline)", "token"
            else:
                label, actor_type = rng.choice(USERS), "user"
            n_rep = rng.randrange(2, 60)
            reason = rng.choice(REASONS[object_type]).format(
                p=rng.randrange(300, 900), slo=300, n=n_rep, game=rng.choice(GAMES), m=rng.randrange(5, 45)
            )
            if rng.random() < 1 / 20_000:
                reason += f" ({RARE_WORD} on court, delay)"
            before = {"desired": n_rep - 1} if object_type == "decision" else None
            after = {"desired": n_rep} if object_type == "decision" else None
            cost = round(rng.uniform(-20, 60), 2) if object_type in ("decision", "override") else None
            object_id = str(rng.randrange(1, 10_000_000)) if object_type else ""
            payload = {
                "created_at": created.isoformat(),
                "actor_type": actor_type,
                "actor_user_id": None,
                "actor_label": label,
                "service_id": service_id,
                "event_type": event_type,
                "object_type": object_type,
                "object_id": object_id,
                "before": before,
                "after": after,
                "reason": reason,
                "cost_impact_per_hour": cost,
            }
            digest = chain_hash(prev, payload)
            copy.write_row(
                (
                    i,
                    created,
                    actor_type,
                    None,
                    label,
                    service_id,
                    event_type,
                    object_type,
                    object_id,
                    None if before is None else canonical(before).decode(),
                    None if after is None else canonical(after).decode(),
                    reason,
                    cost,
                    prev,
                    digest,
                )
            )
            prev = digest
    with connection.cursor() as c:
        c.execute("SELECT setval(pg_get_serial_sequence('scaling_auditevent', 'id'), %s)", [n])
        c.execute("ANALYZE scaling_auditevent")
    AuditChainHead.objects.update_or_create(pk=1, defaults={"last_hash": prev, "last_event_id": n})
    return time.perf_counter() - started


def timed(fn: Any, repeat: int) -> tuple[float, float, Any]:
    fn()  # warm the cache and the connection
    runs = []
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        runs.append((time.perf_counter() - start) * 1000)
    return statistics.median(runs), max(runs), result


def cases(n: int) -> list[tuple[str, str, dict[str, str]]]:
    day = datetime(2026, 5, 14, tzinfo=UTC)
    return [
        ("first page, no filter", "/audit/", {}),
        ("service", "/audit/", {"service": "live-odds"}),
        ("event type (exact, ~2% of events)", "/audit/", {"event_type": "actuator.error"}),
        ("event domain (override.*)", "/audit/", {"event_type": "override"}),
        ("actor", "/audit/", {"actor": "ops-lead"}),
        ("time range: one day", "/audit/", {"since": f"{day:%Y-%m-%d} 00:00", "until": f"{day:%Y-%m-%d} 23:59"}),
        (
            "one day + service + domain",
            "/audit/",
            {
                "since": f"{day:%Y-%m-%d} 00:00",
                "until": f"{day:%Y-%m-%d} 23:59",
                "service": "win-probability",
                "event_type": "decision",
            },
        ),
        ("free text, common ('halftime')", "/audit/", {"q": "halftime"}),
        (f"free text, rare ('{RARE_WORD}', ~1 in 20,000)", "/audit/", {"q": RARE_WORD}),
        (
            "free text + service + domain",
            "/audit/",
            {"q": "marquee", "service": "player-props", "event_type": "override"},
        ),
        ("deep page (seek to the middle)", "/audit/", {"before": str(n // 2)}),
        ("actor + deep page", "/audit/", {"actor": "oncall-2", "before": str(n // 3)}),
        ("API: service + domain", "/api/audit/events", {"service": "live-odds", "event_type": "decision"}),
        ("API: free text, rare", "/api/audit/events", {"q": RARE_WORD}),
    ]


def explain(params: dict[str, str]) -> str:
    """EXPLAIN ANALYZE of the page query the review page runs for these parameters."""
    from dashboard.audit import AuditFilterForm
    from scaling.audit_selectors import audit_events

    form = AuditFilterForm(params)
    assert form.is_valid(), form.errors
    qs = audit_events(form.audit_filter())
    if form.cleaned_data.get("before"):
        qs = qs.filter(id__lt=form.cleaned_data["before"])
    sql, sql_params = qs[:51].query.sql_with_params()
    with connection.cursor() as c:
        c.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, sql_params)
        return "\n".join(row[0] for row in c.fetchall())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="reuse the events already in the database")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "AUDIT.md")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        print("set DATABASE_URL=postgres://... (a scratch database): this benchmark is for PostgreSQL", file=sys.stderr)
        return 2

    call_command("migrate", verbosity=0)
    existing = AuditEvent.objects.count()
    if args.keep and existing:
        n, gen_s = existing, None
        print(f"reusing {n:,} events")
    else:
        print(f"generating {args.events:,} chained events ...", flush=True)
        gen_s = generate(args.events)
        n = args.events
        print(f"  {gen_s:.0f} s")

    # No setup_test_environment(): its template instrumentation would inflate the timings.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    from django.contrib.auth.models import User

    from dashboard.audit import AuditFilterForm
    from dashboard.permissions import ensure_roles
    from scaling.audit_selectors import audit_page

    ensure_roles()
    viewer, _ = User.objects.get_or_create(username="bench-viewer")
    from django.contrib.auth.models import Group

    viewer.groups.add(Group.objects.get(name="viewer"))
    client = Client()
    client.force_login(viewer)

    rows = []
    for label, path, params in cases(n):

        def fetch(path: str = path, params: dict[str, str] = params) -> tuple[int, int]:
            response = client.get(path, params)
            assert response.status_code == 200, (path, params, response.status_code)
            if path.startswith("/api/"):
                return response.status_code, len(response.json()["events"])
            return response.status_code, response.content.count(b"data-event-id=")

        def query(params: dict[str, str] = params) -> int:
            form = AuditFilterForm(params)
            assert form.is_valid(), form.errors
            page = audit_page(
                form.audit_filter(), before=form.cleaned_data.get("before"), after=form.cleaned_data.get("after")
            )
            return len(page.events)

        median_ms, worst_ms, (_, shown) = timed(fetch, args.repeat)
        query_ms, _, _ = timed(query, args.repeat)
        rows.append((label, path, params, median_ms, worst_ms, shown, query_ms))
        print(
            f"{median_ms:8.1f} ms median {worst_ms:8.1f} ms worst {query_ms:7.1f} ms query {shown:3d} rows  {label}",
            flush=True,
        )

    def export_day() -> int:
        response = client.get("/audit/export.csv", {"since": "2026-05-14 00:00", "until": "2026-05-15 00:00"})
        return sum(chunk.count(b"\n") for chunk in response.streaming_content) - 1  # type: ignore[attr-defined]

    csv_ms, _csv_worst, csv_rows = timed(export_day, 3)
    print(f"{csv_ms:8.1f} ms CSV export of one day ({csv_rows:,} rows)")

    start = time.perf_counter()
    report = verify_chain()
    verify_s = time.perf_counter() - start
    print(f"verify_audit: {verify_s:.1f} s, {report.message}")
    slowest = max(rows, key=lambda r: r[3])
    plan = explain(slowest[2])
    rare_plan = explain({"q": RARE_WORD})

    info = machine()
    lines = [
        "# Audit review benchmark",
        "",
        f"Generated by `bench/audit_review.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. "
        f"{n:,} hash-chained audit events over one year; the review page (`/audit/`) and the API "
        "(`/api/audit/events`) timed server-side through Django's test client as a viewer "
        "(whole request: middleware, query, template rendering), "
        f"median and worst of {args.repeat} runs after a warm-up. "
        "Pages are 50 events, seek (keyset) pagination on id. Target: a filtered page under 300 ms.",
        "",
        "## Machine",
        "",
        *[f"- {k}: {v}" for k, v in info.items()],
        "",
        "## Figures",
        "",
        "| case | request median ms | request worst ms | page query median ms | rows shown | under 300 ms |",
        "|---|---:|---:|---:|---:|:---:|",
        *[
            f"| {label} | {med:.1f} | {worst:.1f} | {q_ms:.1f} | {shown} | {'yes' if worst < 300 else 'NO'} |"
            for label, _, _, med, worst, shown, q_ms in rows
        ],
        "",
        f"- CSV export of one filtered day, streamed: {csv_ms:.0f} ms median for {csv_rows:,} rows.",
        f"- `verify_audit` over the whole chain: {verify_s:.1f} s ({report.message}).",
    ]
    if gen_s is not None:
        lines.append(f"- Generating and COPYing {n:,} chained events: {gen_s:.0f} s.")
    lines += [
        "",
        "Indexes that serve these filters: `(service_id, id DESC)`, `(event_type, id DESC)`, "
        "`(actor_label, id DESC)`, `created_at`, `(object_type, object_id)`, and trigram GIN indexes on "
        "`UPPER(reason)` and `UPPER(actor_label)` for free text (pg_trgm, installed by the migration when allowed).",
        "",
        f"## Query plan of the slowest case ({slowest[0]})",
        "",
        "```",
        plan,
        "```",
        "",
        f"## Query plan of the rare free-text search ('{RARE_WORD}')",
        "",
        "```",
        rare_plan,
        "```",
        "",
    ]
    args.out.write_text("\n".join(lines))
    (args.out.with_suffix(".json")).write_text(
        json.dumps(
            {
                "events": n,
                "machine": info,
                "cases": [{"case": r[0], "median_ms": r[3], "worst_ms": r[4], "query_median_ms": r[6]} for r in rows],
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")
    return 0 if all(r[4] < 300 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
