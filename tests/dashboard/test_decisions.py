"""Decision detail (page, htmx panel, API), the timeline on the service page, forecast vs actual."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from dashboard import decisions as decisions_module
from scaling import selectors, services
from scaling.audit import Actor
from scaling.models import Decision, MetricSample, Service
from scaling.retention import history_prune
from tests.factories import T0, make_service

pytestmark = pytest.mark.django_db

EXPLANATION: dict[str, Any] = {
    "desired": 18,
    "current": 12,
    "recommendation": 22,
    "reason": "SCALED_OUT",
    "summary": "Scaled 12 → 18: pre-warming for LAL @ BOS (ABC) at 20:30 ET; forecast 1,640 rps at 20:27",
    "rules": [
        {"rule": "target_utilization", "replicas": 14, "inputs": {"utilization": 0.83, "target": 0.7}, "note": ""},
        {"rule": "slo_guard", "replicas": None, "inputs": {"p95_ms": 120.0, "slo_ms": 300.0}, "note": "within SLO"},
        {
            "rule": "forecast",
            "replicas": 22,
            "inputs": {"forecast_rps": 1640.0, "game": "LAL @ BOS"},
            "note": "tip-off in 27 min",
        },
    ],
    "constraints": [
        {"name": "rate_limit_up", "before": 22, "after": 18, "detail": "at most 6 replicas per 15 s"},
        {"name": "bounds", "before": 18, "after": 18, "detail": "within [1, 50]"},
    ],
    "forecast": {
        "ts": (T0 + timedelta(minutes=4)).isoformat(),
        "rps": 1640.0,
        "replicas": 22,
        "series": [{"ts": (T0 + timedelta(minutes=m)).isoformat(), "rps": 1500.0 + 40 * m} for m in range(5)],
    },
}


def make_decision(service: Service, *, tick: Any = T0, explanation: dict[str, Any] | None = None) -> Decision:
    expl = EXPLANATION if explanation is None else explanation
    return Decision.objects.create(
        service=service,
        tick=tick,
        provisioned=12,
        ready=12,
        desired=18,
        recommendation=22,
        changed=True,
        reason_code="SCALED_OUT",
        summary=str(expl.get("summary", "")),
        explanation=expl,
        actuation=Decision.Actuation.OK,
        actuated_at=tick,
        worker="worker-1",
    )


def test_it_renders_every_rule_and_constraint_of_a_decision(viewer: Client) -> None:
    service = make_service()
    decision = make_decision(service)
    MetricSample.objects.create(service=service, ts=T0 - timedelta(seconds=15), rps=1234.5, p95_ms=180.0, ready=12)
    MetricSample.objects.create(service=service, ts=T0 - timedelta(hours=1), rps=9999.0)  # outside the window

    response = viewer.get(reverse("dashboard:decision", args=[decision.pk]))
    body = response.content.decode()

    assert response.status_code == 200
    for rule in EXPLANATION["rules"]:
        assert f'data-rule="{rule["rule"]}"' in body
    for constraint in EXPLANATION["constraints"]:
        assert f'data-constraint="{constraint["name"]}"' in body
    assert "pre-warming for LAL @ BOS" in body
    assert "tip-off in 27 min" in body and "1,640" in body  # rule note and formatted input
    assert body.count("binding</span>") == 1  # only the rate limit changed the count
    assert "1234.5" in body and "9999" not in body  # the metric window around the tick
    assert "Forecast series (5 points)" in body
    assert "Applied" in body and "worker-1" in body  # actuation result
    assert "Pre-warm: provisions for the demand forecast" in body  # rules and reasons are glossed
    assert "Capacity was added." in body


def test_an_htmx_request_gets_only_the_explanation_panel(viewer: Client) -> None:
    decision = make_decision(make_service())
    response = viewer.get(reverse("dashboard:decision", args=[decision.pk]), headers={"HX-Request": "true"})
    body = response.content.decode()
    assert response.status_code == 200
    assert "decision-explanation" in body and "<html" not in body


def test_an_unknown_decision_is_a_404(viewer: Client) -> None:
    assert viewer.get(reverse("dashboard:decision", args=[987654])).status_code == 404
    assert viewer.get("/api/decisions/987654").status_code == 404


def test_it_tolerates_an_explanation_with_missing_keys(viewer: Client) -> None:
    decision = make_decision(make_service(), explanation={"summary": "held", "forecast": None})
    body = viewer.get(reverse("dashboard:decision", args=[decision.pk])).content.decode()
    assert "No forecast" in body and "No rule produced" in body


def test_a_decision_from_a_real_tick_renders(viewer: Client) -> None:
    service = make_service(demand_scale=40.0)
    result = services.service_evaluate(service_id=service.pk, tick_at=services.align_tick(timezone.now()))
    assert result.decision_id is not None
    decision = Decision.objects.get(pk=result.decision_id)
    body = viewer.get(reverse("dashboard:decision", args=[decision.pk])).content.decode()
    assert decision.summary.split(":")[0] in body
    for rule in decision.explanation["rules"]:
        assert f'data-rule="{rule["rule"]}"' in body
    assert decision.explanation["policy_version"] == 1 and "policy v1" in body


def test_the_decision_detail_needs_a_login(client: Client) -> None:
    decision = make_decision(make_service())
    response = client.get(reverse("dashboard:decision", args=[decision.pk]))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_timeline_links_each_decision_to_its_explanation_panel(viewer: Client) -> None:
    service = make_service()
    decision = make_decision(service)
    with time_machine.travel(T0 + timedelta(minutes=5), tick=False):  # the timeline lists the chosen range
        body = viewer.get(reverse("dashboard:service", args=[service.name])).content.decode()
    url = reverse("dashboard:decision", args=[decision.pk])
    assert f'hx-get="{url}"' in body and 'hx-target="#decision-panel"' in body
    assert 'id="decision-panel"' in body
    assert "pre-warming for LAL @ BOS" in body


def test_the_api_returns_a_decision_with_its_explanation_and_metric_window(viewer: Client) -> None:
    service = make_service()
    decision = make_decision(service)
    MetricSample.objects.create(service=service, ts=T0 - timedelta(seconds=30), rps=900.0)
    data = viewer.get(f"/api/decisions/{decision.pk}").json()
    assert data["service"] == service.name and data["reason_code"] == "SCALED_OUT"
    assert [r["rule"] for r in data["explanation"]["rules"]] == ["target_utilization", "slo_guard", "forecast"]
    assert [s["rps"] for s in data["metric_window"]] == [900.0]
    assert data["actuation"] == "ok"


def test_forecast_series_places_each_forecast_at_the_instant_it_forecast_for() -> None:
    service = make_service()
    make_decision(service, tick=T0)
    make_decision(service, tick=T0 + timedelta(seconds=15), explanation={"summary": "no forecast", "forecast": None})
    series = selectors.forecast_series(service, since=T0 - timedelta(hours=1), until=T0 + timedelta(minutes=1))
    assert series["ts"] == [T0 + timedelta(minutes=4)]
    assert series["rps"] == [1640.0]


def test_a_long_range_draws_the_newest_decision_of_each_bucket_and_every_change() -> None:
    service = make_service()
    start = T0.replace(hour=0, minute=0, second=0)  # a bucket's start: 24 h are drawn in 5-minute buckets
    ticks = [start + timedelta(seconds=15 * i) for i in range(40)]  # 10 minutes: two buckets of 20 ticks
    for i, tick in enumerate(ticks):
        forecast = {"ts": (tick + timedelta(minutes=4)).isoformat(), "rps": float(i)}
        decision = make_decision(service, tick=tick, explanation=EXPLANATION | {"forecast": forecast})
        Decision.objects.filter(pk=decision.pk).update(desired=i, changed=i in (3, 25))
    until = start + timedelta(hours=24)

    series = selectors.service_timeseries(service, since=start, until=until)
    assert series["decision_ts"] == [ticks[19], ticks[39]] and series["desired"] == [19, 39]
    assert [c["ts"] for c in series["changes"]] == [ticks[3], ticks[25]]  # changes are never thinned away
    drawn = selectors.forecast_series(service, since=start, until=until)
    assert drawn["rps"] == [19.0, 39.0] and drawn["ts"] == [
        ticks[19] + timedelta(minutes=4),
        ticks[39] + timedelta(minutes=4),
    ]


def test_the_rate_chart_draws_forecast_beside_actual_demand(viewer: Client, settings: Any) -> None:
    service = make_service()
    now = timezone.now()
    expl = EXPLANATION | {"forecast": {"ts": (now + timedelta(minutes=3)).isoformat(), "rps": 777.0}}
    make_decision(service, tick=now - timedelta(minutes=1), explanation=expl)
    data = viewer.get(reverse("dashboard:service-charts", args=[service.name]) + "?range=1h").json()
    traces = {t["name"]: t for t in data["figures"]["rate"]["data"]}
    assert traces["forecast"]["y"] == [777.0]
    markers = next(t for t in data["figures"]["replicas"]["data"] if t["name"] == "decisions")
    assert markers["customdata"] == [Decision.objects.get(service=service).pk]  # markers open the explanation


def test_the_timeline_can_show_only_changes_and_blocked_changes(viewer: Client) -> None:
    service = make_service()
    make_decision(service, tick=T0)  # scaled 12 → 18
    held: dict[str, Any] = {"summary": "Held at 18: within tolerance", "rules": [], "constraints": []}
    Decision.objects.create(
        service=service,
        tick=T0 + timedelta(seconds=15),
        provisioned=18,
        ready=18,
        desired=18,
        recommendation=18,
        reason_code="WITHIN_TOLERANCE",
        summary=held["summary"],
        explanation=held,
    )
    Decision.objects.create(
        service=service,
        tick=T0 + timedelta(seconds=30),
        provisioned=18,
        ready=18,
        desired=18,
        recommendation=12,
        reason_code="STABILIZING_SCALE_IN",
        summary="Held at 18: stabilizing scale-in",
        explanation=held,
    )
    url = reverse("dashboard:service", args=[service.name])
    with time_machine.travel(T0 + timedelta(minutes=5), tick=False):  # the timeline lists the chosen range
        every = viewer.get(url).content.decode()
        changes = viewer.get(url + "?timeline=changes").content.decode()
    assert "within tolerance" in every and "within tolerance" not in changes
    assert "pre-warming for LAL @ BOS" in changes and "stabilizing scale-in" in changes
    assert "?timeline=changes" in changes  # the periodic refresh keeps the filter


def test_the_changes_timeline_leaves_out_ticks_that_recommended_nothing() -> None:
    # Paused, or without metrics, a tick recommends nothing (NULL): it held, it was not stopped from changing.
    service = make_service()
    make_decision(service, tick=T0)  # scaled 12 → 18
    for i in range(1, 4):
        Decision.objects.create(
            service=service,
            tick=T0 + timedelta(seconds=15 * i),
            provisioned=18,
            ready=18,
            desired=18,
            recommendation=None,
            reason_code="PAUSED",
            summary="Held at 18",
        )
    changes = list(selectors.recent_decisions(service, changes_only=True))
    assert [d.tick for d in changes] == [T0]


def test_the_explanation_compares_the_forecast_with_the_demand_that_came(viewer: Client) -> None:
    service = make_service()
    decision = make_decision(service)  # forecast 1,640 rps for T0 + 4 min
    MetricSample.objects.create(service=service, ts=T0 + timedelta(minutes=4, seconds=5), rps=1600.0)
    body = viewer.get(reverse("dashboard:decision", args=[decision.pk])).content.decode()
    assert "1,640 req/s" in body and "actual <strong>1,600 req/s</strong>" in body and "+2.5 %" in body
    # Its times read in the operator's zone with UTC beside, as every other time on the page (T0 is 18:30 ET).
    assert "Forecast for 2026-01-15 18:34:00 EST (23:34:00 UTC): " in body
    assert "at 2026-01-15 18:34:05 EST (23:34:05 UTC)" in body


def test_the_explanation_steps_to_the_earlier_and_later_ticks(viewer: Client) -> None:
    service = make_service()
    first = make_decision(service, tick=T0)
    middle = make_decision(service, tick=T0 + timedelta(seconds=15))
    last = make_decision(service, tick=T0 + timedelta(seconds=30))
    body = viewer.get(reverse("dashboard:decision", args=[middle.pk]), headers={"HX-Request": "true"}).content.decode()
    assert f'hx-get="{reverse("dashboard:decision", args=[first.pk])}"' in body and 'rel="prev"' in body
    assert f'hx-get="{reverse("dashboard:decision", args=[last.pk])}"' in body and 'rel="next"' in body


def test_every_input_the_engine_records_has_a_gloss() -> None:
    # Decide a spread of situations and collect every input name the rules wrote: each must say what it means.
    from scaling.policy import PolicyParams, decide
    from scaling.policy.forecast import Forecaster
    from tests.policy.builders import T0 as NOW
    from tests.policy.builders import engine_input, finish_input, finishing_forecaster, game, point

    steady = tuple(point(600.0, age_s=a, utilization=0.8, in_flight=30.0) for a in (95, 80, 65, 50, 35, 20))
    tip = T0 + timedelta(minutes=4)
    every = PolicyParams(target_utilization=0.7, target_rps_per_replica=60.0, target_in_flight_per_replica=3.0)
    flat = (500.0,) * 361
    situations = [
        engine_input(metrics=steady, provisioned=40, params=every, games=(game(tip),)),  # pre-warm
        engine_input(metrics=(*steady, point(1500.0, age_s=5)), provisioned=8, params=every),  # quiet-hours panic
        engine_input(metrics=(*steady, point(1500.0, age_s=5)), provisioned=8, params=every, games=(game(tip),)),
        engine_input(metrics=(point(600.0, p95_ms=900.0, p99_ms=2000.0, error_rate=0.05),), params=every),
        finish_input(finishing_forecaster(), 152, overtimes=1),  # a game read as in overtime
        # In a game whose forecast is flat for minutes: a smaller unexplained rise panics.
        engine_input(
            metrics=(*steady[2:], point(650.0, age_s=5)),
            provisioned=8,
            params=every,
            forecaster=Forecaster(baseline=(100.0,) * 48, profiles={"national": flat, "regional": flat}, learned=True),
            games=(game(NOW - timedelta(minutes=60)),),
        ),
    ]
    # A ratio climbing steeply (its trend capped), and a panic lasting from a sample within its window.
    situations.append(_climbing_steeply())
    situations.append(
        engine_input(metrics=(point(100.0, age_s=50), point(400.0, age_s=20), point(150.0, age_s=5)), provisioned=2)
    )
    decided = [decide(inp) for inp in situations] + [decide(engine_input(params=every), metrics_unavailable=True)]
    names = {name for decision in decided for rule in decision.rules for name in rule.inputs}
    assert {"forecast_rps", "surge_base_rps", "p99_ms", "utilization", "in_flight", "unavailable", "overtime"} <= names
    assert {"calendar_smooth", "surge_base_from", "quiet_hours"} <= names
    assert {"trend_capped_at", "ratio_used", "triggered_by", "triggered_needed", "panic_ratio_from"} <= names
    assert sorted(names - set(decisions_module.INPUT_HELP)) == []
    forecast_keys = {key for decision in decided if decision.forecast for key in decision.forecast}
    assert forecast_keys and sorted(forecast_keys - set(decisions_module.FORECAST_HELP)) == []


def _climbing_steeply() -> Any:
    """An hour into a game forecast flat at 1,000 rps, the rate climbing off it 1 % a second: the trend capped."""
    from dataclasses import replace

    from tests.policy.builders import FINISH_SPEC, finish_input, finishing_forecaster

    inp = finish_input(finishing_forecaster(), 60, 0)
    metrics = tuple(replace(p, rps=1000.0 * (1 + 0.01 * (300 - (inp.now - p.ts).total_seconds()))) for p in inp.metrics)
    return replace(
        inp,
        metrics=metrics,
        service=replace(FINISH_SPEC, provisioning_delay_s=600),
        params=replace(inp.params, forecast_trend=1.0),
    )


def test_the_forecast_on_the_page_multiplies_out_from_the_numbers_shown(viewer: Client) -> None:
    # predicted 5.7 × ratio 1.0833 is 6.17, yet 6.293 was shown: the page says the ratio used and its trend.
    from scaling.policy import decide

    result = decide(_climbing_steeply())
    forecast_rule = next(r for r in result.rules if r.rule == "forecast")
    explanation = EXPLANATION | {
        "rules": [{"rule": "forecast", "replicas": 80, "inputs": forecast_rule.inputs, "note": ""}],
        "forecast": result.forecast,
    }
    decision = make_decision(make_service(), explanation=explanation)
    body = viewer.get(reverse("dashboard:decision", args=[decision.pk])).content.decode()
    assert (
        escape(
            "predicted 1,000 rps × ratio used 7.55 = forecast 7,550 rps; ratio used = observed 3.775 + trend 3.775 "
            "(slope 0.6/min × forecast_trend 1 × 10.5 min from the newest window to then, capped at 3.775 "
            "(the trend may at most double the ratio))"
        )
        in body
    )
    assert "ratio_used" in body and "trend_capped_at" in body
    api = viewer.get(f"/api/decisions/{decision.pk}")
    assert api.status_code == 200
    assert api.json()["explanation"]["forecast"]["ratio_used"] == 7.55


def test_times_read_in_the_operators_zone_with_utc_beside() -> None:
    assert decisions_module.fmt("2026-01-15T23:34:00+00:00") == "2026-01-15 18:34:00 EST (23:34:00 UTC)"
    assert decisions_module.fmt("2026-07-15T23:34:00+00:00") == "2026-07-15 19:34:00 EDT (23:34:00 UTC)"


def test_lists_of_names_read_as_a_list_and_an_empty_one_as_none() -> None:
    # The games a forecast saw were shown as JSON: ["LAL @ BOS (ABC) at 20:30 ET"], and none as [].
    assert decisions_module.fmt(["LAL @ BOS (ABC) at 20:30 ET", "NYK @ MIA at 21:00 ET"]) == (
        "LAL @ BOS (ABC) at 20:30 ET, NYK @ MIA at 21:00 ET"
    )
    assert decisions_module.fmt([]) == "none"
    assert decisions_module.fmt({"a": 1}) == '{"a": 1}'
    assert decisions_module.fmt([1, 2]) == "[1, 2]"


def test_input_names_carry_their_gloss_on_the_page(viewer: Client) -> None:
    decision = make_decision(make_service())
    body = viewer.get(reverse("dashboard:decision", args=[decision.pk])).content.decode()
    assert f'<abbr title="{escape(decisions_module.INPUT_HELP["forecast_rps"])}">forecast_rps</abbr>' in body
    assert "<dt>game</dt>" in body  # a name without a gloss still shows


def _audited_decision_pruned(days_ago: int) -> Decision:
    """A real tick's decision that scaled out (so audited), `days_ago` days back, then the hourly prune."""
    service = make_service(demand_scale=40.0)
    tick = services.align_tick(timezone.now() - timedelta(days=days_ago))
    result = services.service_evaluate(service_id=service.pk, tick_at=tick)
    assert result.decision_id is not None
    decision = Decision.objects.get(pk=result.decision_id)
    assert decision.changed, "the tick should have scaled out, and so been audited"
    history_prune(actor=Actor.system("prune_history"), now=timezone.now())
    return decision


def test_a_pruned_decision_says_so_with_what_the_audit_log_recorded(viewer: Client, settings: Any) -> None:
    settings.DECISION_RETENTION_DAYS = 90
    decision = _audited_decision_pruned(100)
    assert not Decision.objects.filter(pk=decision.pk).exists()

    response = viewer.get(reverse("dashboard:decision", args=[decision.pk]))
    body = response.content.decode()
    assert response.status_code == 410
    assert f"Decision {decision.pk} was pruned" in body and "was pruned after 90 days" in body
    assert "Win Probability" in body  # the service, from the audit event
    assert "decision.scaled" in body and escape(decision.summary) in body  # what was recorded about it
    assert f"object_type=decision&amp;object_id={decision.pk}" in body


def test_the_api_answers_410_for_a_pruned_decision_with_its_audit_events(viewer: Client, settings: Any) -> None:
    settings.DECISION_RETENTION_DAYS = 90
    decision = _audited_decision_pruned(100)
    response = viewer.get(f"/api/decisions/{decision.pk}")
    data = response.json()
    assert response.status_code == 410
    assert data["pruned"] is True and data["kept_days"] == 90 and "kept 90 days" in data["detail"]
    assert "decision.scaled" in [e["event_type"] for e in data["audit_events"]]
    assert data["audit_events"][0]["reason"] == decision.summary


def test_a_pruned_decision_the_audit_log_never_recorded_still_says_it_was_pruned(viewer: Client) -> None:
    service = make_service()
    old = make_decision(service, tick=timezone.now() - timedelta(days=400))  # not audited: made directly
    make_decision(service, tick=timezone.now())
    history_prune(actor=Actor.system("prune_history"), now=timezone.now())

    response = viewer.get(reverse("dashboard:decision", args=[old.pk]))
    body = response.content.decode()
    assert response.status_code == 410
    assert "was pruned after 90 days" in body and "only a decision that changed capacity" in body
    # An id never given out is still a plain 404.
    assert viewer.get(reverse("dashboard:decision", args=[old.pk + 1000])).status_code == 404


def test_a_pruned_decision_in_the_side_panel_shows_in_the_panel(viewer: Client) -> None:
    service = make_service()
    old = make_decision(service, tick=timezone.now() - timedelta(days=400))
    make_decision(service, tick=timezone.now())
    history_prune(actor=Actor.system("prune_history"), now=timezone.now())
    response = viewer.get(reverse("dashboard:decision", args=[old.pk]), headers={"HX-Request": "true"})
    body = response.content.decode()
    assert response.status_code == 200  # htmx swaps only a 2xx answer into the panel
    assert 'data-pruned="true"' in body and "<html" not in body


def test_the_audit_page_marks_events_about_pruned_decisions(viewer: Client, settings: Any) -> None:
    settings.DECISION_RETENTION_DAYS = 90
    pruned = _audited_decision_pruned(100)
    kept_service = make_service("player-props", demand_scale=40.0)
    kept = services.service_evaluate(service_id=kept_service.pk, tick_at=services.align_tick(timezone.now()))
    body = viewer.get(reverse("dashboard:audit")).content.decode()
    link = reverse("dashboard:decision", args=[pruned.pk])
    assert f'<a href="{link}">decision {pruned.pk}</a> <span class="muted pruned"' in body
    kept_link = reverse("dashboard:decision", args=[kept.decision_id])
    assert f'<a href="{kept_link}">decision {kept.decision_id}</a></td>' in body


def test_a_kept_decision_whose_samples_were_pruned_says_so(viewer: Client, settings: Any) -> None:
    settings.METRIC_RETENTION_DAYS = 35
    decision = make_decision(make_service(), tick=timezone.now() - timedelta(days=40))
    body = viewer.get(reverse("dashboard:decision", args=[decision.pk])).content.decode()
    assert "Samples are kept 35 days" in body and "this window's were pruned" in body
    assert "No samples were stored for this window" not in body


@pytest.mark.parametrize(
    ("explanation", "said"),
    [
        # It said "this decision was purely reactive" of a tick that decided nothing.
        ({"reason": "PAUSED", "recommendation": None}, "the service was paused: the engine decided nothing"),
        ({"reason": "METRICS_STALE", "recommendation": None}, "metrics were missing: no rule sized a count"),
        ({"reason": "DRY_RUN", "recommendation": 9}, "the pre-warm rule made none this tick; this dry run"),
        ({"reason": "OVERRIDE_ACTIVE", "recommendation": 9}, "an override set the count"),
        ({"reason": "OVERRIDE_ACTIVE", "recommendation": None}, "metrics were missing: no rule sized a count"),
        ({"reason": "SCALED_OUT", "recommendation": 9}, "the pre-warm rule made none this tick"),
    ],
)
def test_a_decision_without_a_forecast_says_why_for_its_kind(
    viewer: Client, explanation: dict[str, Any], said: str
) -> None:
    decision = make_decision(make_service(), explanation={"summary": "held", "forecast": None, **explanation})
    body = viewer.get(reverse("dashboard:decision", args=[decision.pk])).content.decode()
    assert said in body and "purely reactive" not in body


def _tick(service: Service, at: Any, *, changed: bool) -> Decision:
    n = 4
    return Decision.objects.create(
        service=service,
        tick=at,
        provisioned=n,
        ready=n,
        desired=n + 1 if changed else n,
        recommendation=n + 1 if changed else n,
        changed=changed,
        reason_code="SCALED_OUT" if changed else "WITHIN_TOLERANCE",
        summary=f"{'scaled' if changed else 'held'} at {at.isoformat()}",
    )


def _rows(body: str) -> list[int]:
    import re

    return [int(pk) for pk in re.findall(r'<tr class="[^"]*" data-decision-id="(\d+)"', body)]


def test_the_timeline_pages_back_over_the_chosen_range_every_tick_or_changes_only(viewer: Client) -> None:
    service = make_service()
    now = timezone.now()
    holds = [_tick(service, now - timedelta(seconds=15 * i), changed=False) for i in range(1, 46)]
    changes = [_tick(service, now - timedelta(hours=2 * i, seconds=7), changed=True) for i in range(1, 31)]
    url = reverse("dashboard:service", args=[service.name])

    # Changes over 7 days: 30 of them, 20 and then 10, newest first, the older page reached by seeking.
    first = viewer.get(url, {"range": "7d", "timeline": "changes"}).content.decode()
    assert _rows(first) == [d.pk for d in changes[:20]]
    assert f"before={changes[19].pk}" in first and 'hx-trigger="every' in first
    older = viewer.get(url, {"range": "7d", "timeline": "changes", "before": str(changes[19].pk)}).content.decode()
    assert _rows(older) == [d.pk for d in changes[20:]]
    assert "before=" not in older and "The oldest change in the last 7d." in older
    assert f"after={changes[20].pk}" in older and 'hx-trigger="every' not in older  # an older page stays put
    newer = viewer.get(url, {"range": "7d", "timeline": "changes", "after": str(changes[20].pk)}).content.decode()
    assert _rows(newer) == [d.pk for d in changes[:20]]
    # The range bounds it: in the last 6 h, the changes 2 and 4 hours ago (6 h ago is just outside).
    assert _rows(viewer.get(url, {"range": "6h", "timeline": "changes"}).content.decode()) == [
        changes[0].pk,
        changes[1].pk,
    ]

    # Every tick: 20 a page, Older reaching the holds past the first page and the change two hours ago.
    seen: list[int] = []
    query = {"range": "6h", "timeline": "all"}
    for _ in range(5):
        body = viewer.get(url, query).content.decode()
        seen += _rows(body)
        if "before=" not in body:
            break
        query["before"] = body.split("before=")[1].split('"')[0]
    assert seen == [d.pk for d in holds] + [changes[0].pk, changes[1].pk]


def test_an_empty_range_names_the_newest_decision_outside_it(viewer: Client) -> None:
    service = make_service()
    make_decision(service, tick=timezone.now() - timedelta(hours=3))
    body = viewer.get(reverse("dashboard:service", args=[service.name]), {"range": "1h"}).content.decode()
    assert "No decisions in the last 1h: the newest was at" in body and "Choose a longer range" in body


@pytest.mark.parametrize(
    ("provisioned", "reason", "caption"),
    [
        (
            0,
            "METRICS_UNAVAILABLE",
            "The metric source did not answer, or not for every signal: moved into the service bounds [1, 3] (0 → 1).",
        ),
        (10, "METRICS_STALE", "Metrics are older than two ticks: moved into the service bounds [1, 3] (10 → 3)."),
        (
            2,
            "METRICS_UNAVAILABLE",
            "The metric source did not answer, or not for every signal: holding, never scaling in.",
        ),
    ],
)
def test_a_decision_without_metrics_is_captioned_by_what_it_did(
    viewer: Client, provisioned: int, reason: str, caption: str
) -> None:
    # "holding, never scaling in" was the caption of decisions the service bounds had moved (0 → 1, 10 → 3).
    from scaling.policy import PolicyParams, decide
    from scaling.policy.types import ServiceSpec
    from tests.policy.builders import engine_input

    spec = ServiceSpec(min_replicas=1, max_replicas=3, hard_max_replicas=5)
    inp = engine_input(None, provisioned=provisioned, service=spec, params=PolicyParams())
    result = decide(inp, metrics_unavailable=reason == "METRICS_UNAVAILABLE")
    assert str(result.reason) == reason
    decision = make_decision(make_service(min_replicas=1, max_replicas=3), explanation=result.to_dict())
    body = viewer.get(reverse("dashboard:decision", args=[decision.pk])).content.decode()
    assert escape(caption) in body
