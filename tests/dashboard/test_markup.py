"""On every page, and on every form as it comes back refused, each aria-describedby and label names an element
that is there: the description a screen reader reads for a field, its help and its errors, is not lost."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from scaling import services
from scaling.audit import Actor
from scaling.models import Game, GameDayRule, Override, Service, WhatIfRun
from scaling.overrides import override_create
from scaling.schedule.rules import RuleSpec, rule_create
from tests.factories import make_service, make_user, make_whatif_run
from tests.markup import broken_references, heading_count, unlabelled_controls

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("whatif_slots_free")]

Url = Callable[[Service], str]


def _page(name: str) -> Url:
    return lambda service: reverse(name)


def _of_service(name: str) -> Url:
    return lambda service: reverse(name, args=[service.name])


def _whatif_run(service: Service) -> str:
    return f"{reverse('dashboard:whatif', args=[service.name])}?job={WhatIfRun.objects.get().job_id}"


def _of_rule(service: Service) -> str:
    return reverse("dashboard:rule-edit", args=[GameDayRule.objects.get().pk])


def _of_decision(service: Service) -> str:
    return reverse("dashboard:decision", args=[service.decisions.latest("tick").pk])


PAGES: dict[str, Url] = {
    "fleet": _page("dashboard:fleet"),
    "service": _of_service("dashboard:service"),
    "decision": _of_decision,
    "overrides": _page("dashboard:overrides"),
    "override-new": _page("dashboard:override-new"),
    "calendar": _page("dashboard:calendar"),
    "audit": _page("dashboard:audit"),
    "whatif": _of_service("dashboard:whatif"),
    "whatif-run": _whatif_run,
    "policy": _of_service("dashboard:policy"),
    "policy-edit": _of_service("dashboard:policy-edit"),
    "service-new": _page("dashboard:service-new"),
    "service-edit": _of_service("dashboard:service-edit"),
    "rules": _page("dashboard:rules"),
    "rule-new": _page("dashboard:rule-new"),
    "rule-edit": _of_rule,
    "tokens": _page("access:tokens"),
    "confirm-password": _page("access:confirm-password"),
}

# Each form posted with mistakes in its fields: (where, what, whether htmx asks).
REFUSED: dict[str, tuple[Url, dict[str, object], bool]] = {
    "override-new": (
        _page("dashboard:override-new"),
        {"kind": "pin", "replicas": "thirty", "ends_at_local": "2026-31-01T01:30", "duration_minutes": "x"},
        False,
    ),
    "rule-new": (_page("dashboard:rule-new"), {"name": "", "floor_replicas": "0", "weekdays": ["9"]}, False),
    "service-new": (_page("dashboard:service-new"), {"name": "not a slug", "min_replicas": "x"}, False),
    "service-edit": (_of_service("dashboard:service-edit"), {"min_replicas": "x"}, False),
    "policy-edit": (_of_service("dashboard:policy-edit"), {"target_utilization": "2", "reason": ""}, False),
    "whatif": (_of_service("dashboard:whatif"), {"range": "1h", "policy": "edited", "params": "{"}, False),
    "whatif-htmx": (_of_service("dashboard:whatif"), {"range": "1h", "policy": "edited", "params": "{"}, True),
    "whatif-fall-back": (
        _of_service("dashboard:whatif"),
        {"range": "1h", "policy": "hpa", "start_local": "2025-11-02T00:30", "end_local": "2025-11-02T01:30"},
        False,
    ),
    "mode": (_of_service("dashboard:service-mode"), {"mode": "paused", "reason": ""}, True),
    "tokens": (_page("access:tokens"), {"name": "", "days": "0"}, False),
    "confirm-password": (_page("access:confirm-password"), {"password": "not it"}, False),
}


@pytest.fixture
def service() -> Service:
    """A service with a decision, a pending override and a rule's floor on a game: every page has rows to show."""
    service = make_service(demand_scale=40.0)
    services.service_evaluate(service_id=service.pk, tick_at=services.align_tick(timezone.now()))
    tip = timezone.now() + timedelta(hours=3)
    Game.objects.create(game_id="0022500777", tip_utc=tip, away_team="BOS", home_team="NYK", national_tv="ESPN")
    rule_create(
        spec=RuleSpec(name="tv", match={"national_tv": True}, services=[service], reason="TV", floor_replicas=4),
        actor=Actor.system("t"),
    )
    [pin] = override_create(
        services=[service],
        kind="pin",
        replicas=45,
        starts_at=tip - timedelta(hours=1),
        ends_at=tip + timedelta(hours=1),
        reason="a large pin a second person approves",
        actor=Actor.system("t"),
    )
    assert pin.status == Override.Status.PENDING_APPROVAL  # its approve and reject forms show
    make_whatif_run(service, created_at=timezone.now(), status="failed", error="no samples")  # listed, and opens
    return service


@pytest.fixture
def admin(client: Client) -> Client:
    client.force_login(make_user("admin", "admin"))
    return client


@pytest.mark.parametrize("page", PAGES)
def test_each_page_names_only_elements_it_has(admin: Client, service: Service, page: str) -> None:
    response = admin.get(PAGES[page](service))
    assert response.status_code == 200
    assert broken_references(response.content.decode()) == []


@pytest.mark.parametrize("page", PAGES)
def test_each_page_has_one_h1_and_labels_every_field(admin: Client, service: Service, page: str) -> None:
    body = admin.get(PAGES[page](service)).content.decode()
    assert heading_count(body, "h1") == 1
    assert unlabelled_controls(body) == []


@pytest.mark.parametrize("form", REFUSED)
def test_each_refused_form_names_only_elements_it_has(admin: Client, service: Service, form: str) -> None:
    url, data, htmx = REFUSED[form]
    response = admin.post(url(service), data, headers={"HX-Request": "true"} if htmx else {})
    body = response.content.decode()
    assert response.status_code in {200, 400, 422} and "aria-invalid" in body
    assert broken_references(body) == []


def test_a_refused_audit_filter_names_only_elements_it_has(admin: Client, service: Service) -> None:
    response = admin.get(reverse("dashboard:audit"), {"since": "yesterday"})
    assert 'id="id_since_error"' in response.content.decode() and "aria-invalid" in response.content.decode()
    assert broken_references(response.content.decode()) == []


def test_a_refused_login_names_only_elements_it_has(client: Client) -> None:
    make_user("operator", "operator")
    response = client.post(reverse("login"), {"username": "operator", "password": "not it"})
    assert broken_references(response.content.decode()) == []
