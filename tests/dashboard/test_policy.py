"""Policy editing (form, revisions, restore, API) and the mode control."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from dashboard.forms import local_input
from dashboard.policy_forms import PolicyForm, check_params, form_data_from_json, params_as_dict
from dashboard.templatetags.tipoff_time import both_times, local_time
from scaling import services
from scaling.audit import Actor, EventType
from scaling.models import AuditEvent, GameDayRule, Override, PolicyRevision, Service
from scaling.policy import PolicyParams
from scaling.policy.types import param_range, service_problems
from tests.factories import make_service, make_user
from tests.markup import broken_references, unlabelled_controls

pytestmark = pytest.mark.django_db

DEFAULTS = PolicyParams()


@pytest.fixture
def operator(client: Client) -> Client:
    client.force_login(make_user("operator", "operator"))
    return client


def form_post(overrides: dict[str, Any], *, reason: str = "more headroom for the playoffs", version: int = 1) -> dict:
    data = form_data_from_json(overrides, reason, base=PolicyParams().to_dict())
    return {k: v for k, v in data.items() if v != ""} | {"based_on_version": str(version)}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("target_utilization", 1.5, "must be 0 (off) or in [0.01, 1]"),
        ("target_utilization", -0.1, "must be 0 (off) or in [0.01, 1]"),
        ("tolerance", 0.9, "must be in [0, 0.5]"),
        ("scale_down_stabilization_s", -5, "must be in [0, 86400]"),
        ("scale_up_period_s", 0, "must be in (0, 86400]"),
        ("scale_down_percent", 150, "must be in [0, 100]"),
        ("scale_up_pods", 2.5, "Enter a whole number"),
        ("tolerance", "lots", "Enter a number"),
        ("scale_down_stabilization_s", 100_000_000_000, "must be in [0, 86400]"),
        ("scale_up_period_s", 86_401, "must be in (0, 86400]"),
        ("fallback_after_s", 1e9, "must be in [0, 86400]"),
        ("stabilization_per_delay", 1e9, "must be in [0, 2]"),
        ("panic_headroom", 50, "must be in [0, 10]"),
        ("target_rps_per_replica", 1e-9, "must be 0 (off) or in [0.01, 100000]"),
        ("target_rps_per_replica", 2e16, "must be 0 (off) or in [0.01, 100000]"),
        ("target_in_flight_per_replica", 100_001, "must be 0 (off) or in [0.01, 100000]"),
    ],
)
def test_the_form_rejects_a_bad_value_naming_the_field(field: str, value: Any, message: str) -> None:
    form = PolicyForm(form_post({field: value}))
    assert not form.is_valid()
    assert list(form.errors) == [field]
    assert message in " ".join(form.field_errors()[field])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("scale_down_stabilization_s", 1e11),
        ("forecast_lookahead_s", 86_401),
        ("scale_in_cooldown_s", 1e300),
        ("stabilization_per_delay", 2.5),
        ("reactive_headroom", 11),
        ("target_utilization", 0.001),
        ("target_in_flight_per_replica", 1e-300),
    ],
)
def test_the_engine_refuses_a_value_out_of_its_range_naming_the_field(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"policy parameter {field} must be"):
        PolicyParams.from_dict({field: value})


def test_a_value_the_policy_form_accepts_never_breaks_the_control_tick(admin: Client) -> None:
    from scaling.models import Decision

    service = make_service(demand_scale=40.0)
    response = admin.post(
        reverse("dashboard:policy-edit", args=[service.name]), form_post({"scale_down_stabilization_s": 1e11})
    )
    assert (
        response.status_code == 422
        and "Scale down stabilization (s) must be in [0, 86400]" in response.content.decode()
    )
    # At every limit at once, the tick still decides.
    limits = {
        **{name: 86_400 for name in PolicyParams().to_dict() if name.endswith("_s")},
        "stabilization_per_delay": 2,
        **dict.fromkeys(("reactive_headroom", "panic_headroom", "forecast_headroom", "cold_start_headroom"), 10),
        **dict.fromkeys(("target_utilization", "target_rps_per_replica", "target_in_flight_per_replica"), 0.01),
    }
    response = admin.post(reverse("dashboard:policy-edit", args=[service.name]), form_post(limits))
    assert response.status_code == 302
    Service.objects.filter(pk=service.pk).update(provisioning_delay_s=86_400)
    result = services.service_evaluate(service_id=service.pk, tick_at=services.align_tick(timezone.now()))
    assert result.status == "decided" and Decision.objects.filter(service=service).exists()


def test_the_form_needs_a_reason() -> None:
    form = PolicyForm(form_post({}, reason=""))
    assert not form.is_valid() and list(form.errors) == ["reason"]


def test_the_form_has_an_input_and_help_text_for_every_engine_parameter() -> None:
    form = PolicyForm(initial=PolicyParams().to_dict())
    names = [f.name for f in form.parameter_fields()]
    assert names == list(PolicyParams().to_dict())
    assert all(form.fields[name].help_text for name in names)


def test_saving_the_form_creates_a_revision_and_an_audit_event_and_bumps_the_version(admin: Client) -> None:
    service = make_service()
    response = admin.post(reverse("dashboard:policy-edit", args=[service.name]), form_post({"target_utilization": 0.6}))
    assert response.status_code == 302
    service.refresh_from_db()
    assert service.policy_version == 2
    assert service.policy["target_utilization"] == 0.6
    versions = list(PolicyRevision.objects.filter(service=service).order_by("version").values_list("version", "reason"))
    assert versions == [(1, "policy in force before the first recorded change"), (2, "more headroom for the playoffs")]
    event = AuditEvent.objects.get(event_type=EventType.POLICY_CHANGED)
    assert event.before == {"target_utilization": DEFAULTS.target_utilization}
    assert event.after == {"target_utilization": 0.6}
    assert event.actor_label == "admin" and event.reason == "more headroom for the playoffs"


def test_a_valid_policy_saved_over_a_stored_one_the_engine_refuses_replaces_it_and_the_ticks_decide_again(
    admin: Client,
) -> None:
    from scaling.models import Decision

    service = make_service()
    Service.objects.filter(pk=service.pk).update(policy={"tolerance": 0.9})  # saved before the range narrowed
    edit = admin.get(reverse("dashboard:policy-edit", args=[service.name]))
    assert edit.status_code == 200

    response = admin.post(reverse("dashboard:policy-edit", args=[service.name]), form_post({"tolerance": 0.2}))

    assert response.status_code == 302
    service.refresh_from_db()
    assert (service.policy_version, service.policy["tolerance"]) == (2, 0.2)
    event = AuditEvent.objects.get(event_type=EventType.POLICY_CHANGED)
    assert (event.before, event.after) == ({"tolerance": 0.9}, {"tolerance": 0.2})
    assert PolicyRevision.objects.get(service=service, version=1).params["tolerance"] == 0.9
    services.service_evaluate(service_id=service.pk, tick_at=services.align_tick(timezone.now()))
    assert Decision.objects.get(service=service).reason_code != "POLICY_INVALID"


def test_a_bad_value_saves_nothing_and_says_which_field(admin: Client) -> None:
    service = make_service()
    response = admin.post(reverse("dashboard:policy-edit", args=[service.name]), form_post({"tolerance": 0.9}))
    assert response.status_code == 422
    body = response.content.decode()
    assert 'data-param="tolerance"' in body and "must be in [0, 0.5]" in body
    service.refresh_from_db()
    assert service.policy_version == 1 and not PolicyRevision.objects.exists()


def test_a_save_based_on_an_old_version_is_refused(admin: Client) -> None:
    service = make_service()
    url = reverse("dashboard:policy-edit", args=[service.name])
    admin.post(url, form_post({"tolerance": 0.23}))
    response = admin.post(url, form_post({"tolerance": 0.37}, version=1))
    assert response.status_code == 422 and "changed while you were editing" in response.content.decode()
    service.refresh_from_db()
    assert service.policy["tolerance"] == 0.23


@pytest.mark.parametrize("version", ["abc", "", "1.5", "-1"])
def test_a_malformed_version_is_a_malformed_form_not_a_conflict(admin: Client, version: str) -> None:
    # It answered "The policy changed while you were editing it (now version 1)": nobody had changed it.
    service = make_service()
    data = form_post({"tolerance": 0.37}) | {"based_on_version": version}
    response = admin.post(reverse("dashboard:policy-edit", args=[service.name]), data)
    assert response.status_code == 400
    body = response.content.decode()
    assert "changed while you were editing" not in body
    assert "This form is malformed" in body and "reload the page" in body
    assert Service.objects.get(pk=service.pk).policy_version == 1


def test_a_viewer_can_read_the_policy_but_not_edit_it(viewer: Client) -> None:
    service = make_service()
    page = viewer.get(reverse("dashboard:policy", args=[service.name]))
    assert page.status_code == 200 and "target_utilization" in page.content.decode()
    assert "Edit policy" not in page.content.decode()
    assert viewer.get(reverse("dashboard:policy-edit", args=[service.name])).status_code == 403
    response = viewer.post(reverse("dashboard:policy-edit", args=[service.name]), form_post({"tolerance": 0.23}))
    assert response.status_code == 403
    response = viewer.put(
        f"/api/services/{service.name}/policy",
        {"params": {"tolerance": 0.2}, "reason": "x", "based_on_version": 1},
        content_type="application/json",
    )
    assert response.status_code == 403
    service.refresh_from_db()
    assert service.policy_version == 1


def test_the_policy_page_lists_revisions_with_their_diffs_and_restores_one(admin: Client) -> None:
    service = make_service()
    url = reverse("dashboard:policy-edit", args=[service.name])
    tolerance, pods = round(DEFAULTS.tolerance + 0.05, 3), DEFAULTS.scale_up_pods + 3
    admin.post(url, form_post({"tolerance": tolerance}, reason="quieter"))
    admin.post(url, form_post({"tolerance": tolerance, "scale_up_pods": pods}, reason="faster", version=2))
    page = admin.get(reverse("dashboard:policy", args=[service.name])).content.decode()
    assert "quieter" in page and "faster" in page
    # Each restore form's reason is named by a label, not by a placeholder alone (gone once typing starts).
    assert '<label for="restore-reason-1">Reason for restoring v1</label>' in page
    assert unlabelled_controls(page) == [] and broken_references(page) == []
    assert f"<del>{DEFAULTS.scale_up_pods}</del> → <ins>{pods}</ins>" in page
    assert f"<del>{DEFAULTS.tolerance}</del> → <ins>{tolerance}</ins>" in page

    restore = reverse("dashboard:policy-restore", args=[service.name, 1])
    assert admin.post(restore, {"reason": ""}).status_code == 302  # refused: no reason
    service.refresh_from_db()
    assert service.policy_version == 3
    admin.post(restore, {"reason": "back to the defaults"})
    service.refresh_from_db()
    assert service.policy_version == 4
    assert params_as_dict(service.policy) == PolicyParams().to_dict()
    latest = PolicyRevision.objects.get(service=service, version=4)
    assert latest.reason == "restore version 1: back to the defaults"


def test_the_api_reads_and_replaces_the_policy(admin: Client) -> None:
    service = make_service()
    got = admin.get(f"/api/services/{service.name}/policy").json()
    assert got["version"] == 1 and got["params"] == PolicyParams().to_dict()

    response = admin.put(
        f"/api/services/{service.name}/policy",
        # 0.55 differs from any default
        {"params": {"target_utilization": 0.55}, "reason": "playoffs", "based_on_version": 1},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert response.json()["version"] == 2 and response.json()["changed"] is True
    assert response.json()["params"]["target_utilization"] == 0.55
    assert response.json()["params"]["tolerance"] == DEFAULTS.tolerance  # omitted parameters keep their value

    revisions = admin.get(f"/api/services/{service.name}/policy/revisions").json()
    assert [(r["version"], r["actor"]) for r in revisions] == [(2, "admin"), (1, "system:initial")]
    assert AuditEvent.objects.filter(event_type=EventType.POLICY_CHANGED, service=service).count() == 1


def test_the_api_answers_422_naming_each_bad_field(admin: Client) -> None:
    service = make_service()
    response = admin.put(
        f"/api/services/{service.name}/policy",
        {"params": {"tolerance": 2, "no_such_knob": 1, "scale_up_pods": "many"}, "reason": " ", "based_on_version": 1},
        content_type="application/json",
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"tolerance", "no_such_knob", "scale_up_pods", "reason"}
    assert Service.objects.get(pk=service.pk).policy_version == 1


def test_the_apis_detail_says_the_first_problem_in_words(admin: Client) -> None:
    # It said "invalid policy: tolerance", where the README promises `detail` "says it in words".
    service = make_service()
    response = admin.put(
        f"/api/services/{service.name}/policy",
        {"params": {"tolerance": 0.9}, "reason": "tune", "based_on_version": 1},
        content_type="application/json",
    )
    assert response.status_code == 422
    assert response.json() == {
        "detail": "tolerance: must be in [0, 0.5] (got 0.9)",
        "field": "tolerance",
        "errors": [{"field": "tolerance", "message": "must be in [0, 0.5] (got 0.9)"}],
    }
    several = admin.put(
        f"/api/services/{service.name}/policy",
        {"params": {"tolerance": 2, "no_such_knob": 1}, "reason": " ", "based_on_version": 1},
        content_type="application/json",
    ).json()
    assert several["detail"] == (
        "no_such_knob: unknown policy parameter 'no_such_knob' (and 2 more problems: tolerance, reason)"
    )
    assert several["field"] == "no_such_knob" and len(several["errors"]) == 3


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"prewarm": "no"}, "prewarm", "must be true or false (got 'no')"),
        ({"slo_guard": 7}, "slo_guard", "must be true or false (got 7)"),
        ({"tolerance": True}, "tolerance", "must be a number (got True)"),
    ],
)
def test_the_api_refuses_a_value_of_the_wrong_json_type(
    admin: Client, params: dict[str, Any], field: str, message: str
) -> None:
    # Read as a page's form data, "no" and 7 were ticked boxes: the API switched the parameter on.
    service = make_service()
    response = admin.put(
        f"/api/services/{service.name}/policy",
        {"params": {**params, "tolerance_typo": 1}, "reason": "typed badly", "based_on_version": 1},
        content_type="application/json",
    )
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert any(e["field"] == field and message in e["message"] for e in errors), errors
    assert {e["field"] for e in errors} == {field, "tolerance_typo"}  # every problem named, each once
    assert Service.objects.get(pk=service.pk).policy_version == 1
    _, problems = check_params(params, base=PolicyParams().to_dict())  # as the what-if page checks them
    assert [name for name, _ in problems] == [field]


def test_the_api_needs_a_reason_in_the_body(admin: Client) -> None:
    service = make_service()
    response = admin.put(
        f"/api/services/{service.name}/policy",
        {"params": {"tolerance": 0.2}, "based_on_version": 1},
        content_type="application/json",
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["reason"]


def test_an_operator_changes_the_mode_with_a_reason_and_an_end_and_it_is_audited(operator: Client) -> None:
    service = make_service()
    until = (timezone.now() + timedelta(hours=2)).replace(second=0, microsecond=0)
    url = reverse("dashboard:service-mode", args=[service.name])
    response = operator.post(
        url,
        {"mode": "dry_run", "reason": "watching the new model", "until_local": local_input(until)},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 204 and response["HX-Refresh"] == "true"
    service.refresh_from_db()
    assert (service.mode, service.mode_until) == (Service.Mode.DRY_RUN, until)
    event = AuditEvent.objects.get(event_type=EventType.SERVICE_MODE_CHANGED)
    assert event.before == {"mode": "active", "until": None}
    assert event.after == {"mode": "dry_run", "until": until.isoformat()}
    assert event.reason == "watching the new model" and event.actor_label == "operator"
    page = operator.get(reverse("dashboard:service", args=[service.name])).content.decode()
    assert f"until {both_times(until)}" in page


def test_a_pause_names_the_overrides_it_keeps_from_being_applied(operator: Client, settings: Any) -> None:
    settings.OPERATOR_TIME_ZONE = "America/New_York"
    service = make_service()
    now = timezone.now()
    until = (now + timedelta(hours=2)).replace(second=0, microsecond=0)
    rule = GameDayRule.objects.create(name="National TV games", reason="tv", floor_replicas=25)
    window = {"service": service, "reason": "r"}
    Override.objects.create(
        kind="floor", replicas=25, starts_at=now + timedelta(minutes=30), ends_at=now + timedelta(hours=4),
        rule=rule, **window,
    )  # fmt: skip
    Override.objects.create(
        kind="pin", replicas=6, starts_at=now + timedelta(hours=1), ends_at=now + timedelta(hours=3),
        status=Override.Status.PENDING_APPROVAL, **window,
    )  # fmt: skip
    for status, starts_at in [
        (Override.Status.APPROVED, until + timedelta(minutes=5)),
        (Override.Status.CANCELLED, now),
    ]:
        Override.objects.create(
            kind="floor", replicas=9, starts_at=starts_at, ends_at=until + timedelta(hours=1), status=status, **window
        )
    response = operator.post(
        reverse("dashboard:service-mode", args=[service.name]),
        {"mode": "paused", "reason": "maintenance", "until_local": local_input(until)},
        follow=True,
    )
    said = [str(m) for m in response.context["messages"]]
    floor = local_time(now + timedelta(minutes=30), "%a %H:%M")
    pin = local_time(now + timedelta(hours=1), "%a %H:%M")
    assert (
        f"Floor 25 from {floor} (rule National TV games), pin 6 from {pin} (pending approval) "
        "will not be applied while paused." in said
    )
    assert not any("floor 9" in m for m in said)  # the floor after the pause, and the cancelled one


def test_a_mode_change_without_a_reason_is_refused(operator: Client) -> None:
    service = make_service()
    url = reverse("dashboard:service-mode", args=[service.name])
    until = local_input(timezone.now() + timedelta(hours=1))
    response = operator.post(
        url, {"mode": "paused", "reason": "", "until_local": until}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200 and "reason" in response.content.decode()
    service.refresh_from_db()
    assert service.mode == Service.Mode.ACTIVE and not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    ("until", "message"),
    [
        (None, "A pause or dry run needs an end"),
        (timedelta(hours=-1), "the end must be in the future"),
        (timedelta(hours=25), "a pause may last at most 24 h"),
        ("tomorrow-ish", "enter a date and time"),
    ],
)
def test_a_pause_without_a_valid_end_is_refused_naming_the_end(operator: Client, until: Any, message: str) -> None:
    service = make_service()
    data = {"mode": "paused", "reason": "maintenance"}
    if isinstance(until, timedelta):
        data["until_local"] = local_input(timezone.now() + until)
    elif until:
        data["until_local"] = until
    response = operator.post(
        reverse("dashboard:service-mode", args=[service.name]), data, headers={"HX-Request": "true"}
    )
    body = response.content.decode()
    assert response.status_code == 200 and "until_local" in body and message in body
    service.refresh_from_db()
    assert (service.mode, service.mode_until) == (Service.Mode.ACTIVE, None) and not AuditEvent.objects.exists()


def test_without_htmx_a_refused_pause_says_why_on_the_service_page(operator: Client) -> None:
    service = make_service()
    url = reverse("dashboard:service-mode", args=[service.name])
    response = operator.post(url, {"mode": "paused", "reason": "maintenance"}, follow=True)
    assert "The mode was not changed: A pause or dry run needs an end" in response.content.decode()
    service.refresh_from_db()
    assert service.mode == Service.Mode.ACTIVE


def test_setting_a_service_active_again_needs_no_end(operator: Client) -> None:
    service = make_service()
    until = timezone.now() + timedelta(hours=1)
    services.service_set_mode(service=service, mode="paused", actor=Actor.system("t"), reason="drill", until=until)
    response = operator.post(
        reverse("dashboard:service-mode", args=[service.name]),
        {"mode": "active", "reason": "drill over", "until_local": "garbage"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 204
    service.refresh_from_db()
    assert (service.mode, service.mode_until) == (Service.Mode.ACTIVE, None)


def test_a_viewer_cannot_change_the_mode_and_sees_no_control(viewer: Client) -> None:
    service = make_service()
    response = viewer.post(reverse("dashboard:service-mode", args=[service.name]), {"mode": "paused", "reason": "x"})
    assert response.status_code == 403
    page = viewer.get(reverse("dashboard:service", args=[service.name])).content.decode()
    assert "mode-form" not in page and "Policy v1" in page
    service.refresh_from_db()
    assert service.mode == Service.Mode.ACTIVE


def test_a_user_without_a_role_cannot_read_policies_or_decisions_over_the_api(client: Client) -> None:
    from django.contrib.auth.models import User

    service = make_service()
    client.force_login(User.objects.create_user("nobody", password="pw-for-tests-1"))
    assert client.get(f"/api/services/{service.name}/policy").status_code == 403
    assert client.get(f"/api/services/{service.name}/policy/revisions").status_code == 403


def test_the_service_function_refuses_a_policy_change_without_a_reason() -> None:
    from scaling import services
    from scaling.audit import Actor

    service = make_service()
    with pytest.raises(ValueError, match="reason"):
        services.service_update_policy(service=service, params={"tolerance": 0.23}, actor=Actor.system(), reason=" ")
    assert not PolicyRevision.objects.exists() and not AuditEvent.objects.exists()


def test_an_admins_api_token_changes_the_policy_and_the_revision_names_the_token() -> None:
    from scaling.audit import Actor
    from scaling.tokens import token_create

    service = make_service()
    boss = make_user("boss", "admin")
    secret = token_create(user=boss, name="release-pipeline", days=5, actor=Actor.for_user(boss)).secret
    response = Client().put(
        f"/api/services/{service.name}/policy",
        {"params": {"tolerance": 0.23}, "reason": "release 4.2 is noisier", "based_on_version": 1},
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 200 and response.json()["version"] == 2
    revision = PolicyRevision.objects.get(service=service, version=2)
    assert revision.actor_label == "boss (token release-pipeline)" and revision.actor_user_id == boss.pk
    event = AuditEvent.objects.get(event_type=EventType.POLICY_CHANGED)
    assert event.actor_type == "token"


def test_an_api_change_based_on_an_old_version_is_refused_as_on_the_edit_page(admin: Client) -> None:
    service = make_service()
    url = f"/api/services/{service.name}/policy"
    first = admin.put(url, {"params": {"tolerance": 0.2}, "reason": "a", "based_on_version": 1}, "application/json")
    assert first.status_code == 200 and first.json()["version"] == 2

    stale = admin.put(url, {"params": {"tolerance": 0.3}, "reason": "b", "based_on_version": 1}, "application/json")

    assert stale.status_code == 409 and stale.json()["version"] == 2
    assert "changed since version 1 (now version 2)" in stale.json()["detail"]
    assert params_as_dict(Service.objects.get(pk=service.pk).policy)["tolerance"] == 0.2


def test_an_api_change_naming_its_version_otherwise_is_refused_naming_the_field(admin: Client) -> None:
    # Sent as "version", the base was ignored and a change based on version 1 replaced version 2.
    service = make_service()
    url = f"/api/services/{service.name}/policy"
    admin.put(url, {"params": {"tolerance": 0.2}, "reason": "a", "based_on_version": 1}, "application/json")

    stale = admin.put(url, {"params": {"tolerance": 0.3}, "reason": "b", "version": 1}, "application/json")

    assert stale.status_code == 422
    assert {e["field"] for e in stale.json()["errors"]} == {"version", "based_on_version"}
    service.refresh_from_db()
    assert (service.policy_version, params_as_dict(service.policy)["tolerance"]) == (2, 0.2)


def test_an_api_change_must_say_the_version_it_is_based_on(admin: Client) -> None:
    service = make_service()
    url = f"/api/services/{service.name}/policy"

    response = admin.put(url, {"params": {"tolerance": 0.3}, "reason": "b"}, "application/json")

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["based_on_version"]
    assert Service.objects.get(pk=service.pk).policy_version == 1


@pytest.mark.django_db(transaction=True)
def test_of_two_api_changes_at_once_based_on_one_version_the_second_is_refused(
    monkeypatch: pytest.MonkeyPatch, on_postgres: None
) -> None:
    """The second change arrives while the first has checked the version and not yet saved it: it waits,
    then finds the version it was based on gone, and replaces nothing."""
    import threading

    from django.db import connection, connections

    from dashboard import policy_forms
    from scaling.tokens import token_create
    from tests.waiting import wait_until

    service = make_service()
    boss = make_user("boss", "admin")
    bearer = {
        "Authorization": f"Bearer {token_create(user=boss, name='ci', days=5, actor=Actor.for_user(boss)).secret}"
    }
    url = f"/api/services/{service.name}/policy"

    def put(params: dict[str, Any], reason: str) -> int:
        body = {"params": params, "reason": reason, "based_on_version": 1}
        return Client().put(url, body, content_type="application/json", headers=bearer).status_code

    second: list[int] = []
    racers: list[threading.Thread] = []

    def send_second() -> None:
        try:
            second.append(put({"target_utilization": 0.6}, "second"))
        finally:
            connections.close_all()

    class FirstWaitsForTheSecond(PolicyForm):
        def is_valid(self) -> bool:
            if self.data.get("reason") == "first":
                racers.append(threading.Thread(target=send_second))
                racers[0].start()

                def second_done_or_waiting() -> bool:
                    with connection.cursor() as cursor:  # inside the first's transaction: clear its stats snapshot
                        cursor.execute("SELECT pg_stat_clear_snapshot()")
                        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
                        return bool(second) or cursor.fetchone()[0] > 0

                wait_until(second_done_or_waiting, timeout_s=10, interval_s=0.02)
            return super().is_valid()

    monkeypatch.setattr(policy_forms, "PolicyForm", FirstWaitsForTheSecond)  # the API checks through it
    assert put({"tolerance": 0.2}, "first") == 200
    racers[0].join(timeout=10)

    assert second == [409]
    service.refresh_from_db()
    params = params_as_dict(service.policy)
    assert (params["tolerance"], params["target_utilization"], service.policy_version) == (
        0.2,
        DEFAULTS.target_utilization,
        2,
    )


def _refused_pause(operator: Client, until_local: str) -> str:
    service = make_service()
    data = {"mode": "paused", "reason": "maintenance", "until_local": until_local}
    url = reverse("dashboard:service-mode", args=[service.name])
    return operator.post(url, data, headers={"HX-Request": "true"}).content.decode()


class _Controls(HTMLParser):
    """A page's form controls (their attributes, by name) and the text of each element with an id."""

    VOID = frozenset({"input", "br", "img", "meta", "link", "hr"})

    def __init__(self, body: str) -> None:
        super().__init__()
        self.controls: dict[str, dict[str, str | None]] = {}
        self.text_by_id: dict[str, str] = {}
        self._open: list[str | None] = []
        self.feed(body)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag in ("input", "select", "textarea") and named.get("name"):
            self.controls[str(named["name"])] = named
        if tag not in self.VOID:
            self._open.append(named.get("id"))
            self.text_by_id.setdefault(named.get("id") or "", "")

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID and self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for opened in filter(None, self._open):
            self.text_by_id[opened] += data

    def error_of(self, name: str) -> str | None:
        """What the control's aria-describedby points at, if the control is marked invalid."""
        control = self.controls[name]
        if control.get("aria-invalid") != "true":
            return None
        return " ".join(self.text_by_id[i].strip() for i in str(control.get("aria-describedby")).split())


def test_each_refusal_of_a_mode_change_is_shown_beside_its_field(operator: Client) -> None:
    service = make_service()
    data = {"mode": "paused", "reason": "", "until_local": ""}
    url = reverse("dashboard:service-mode", args=[service.name])
    body = operator.post(url, data, headers={"HX-Request": "true"}).content.decode()
    page = _Controls(body)
    assert page.error_of("reason") == "A reason is required to change the mode."
    assert page.error_of("until_local") == "A pause or dry run needs an end: when should the service be active again?"
    assert page.error_of("mode") is None
    assert 'role="alert"' not in body  # not listed again in an alert after the button


def test_a_refusal_of_no_field_of_the_mode_form_stays_in_the_alert(
    operator: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(**kwargs: Any) -> bool:
        raise services.ModeError("backend", "the backend refuses a pause just now")

    monkeypatch.setattr(services, "service_set_mode", refused)
    body = _refused_pause(operator, local_input(timezone.now() + timedelta(hours=1)))
    alert = body.split('role="alert"', 1)[1].split("</", 1)[0]
    assert "the backend refuses a pause just now" in alert
    assert not any(control.get("aria-invalid") for control in _Controls(body).controls.values())


def test_a_refused_end_is_shown_beside_it_without_the_fall_back_choice(operator: Client) -> None:
    body = _refused_pause(operator, local_input(timezone.now() + timedelta(hours=30)))
    error = _Controls(body).error_of("until_local")
    assert error is not None and error.startswith("a pause may last at most 24 h")
    assert "until_local:" not in body and "If the clocks fall back" not in body


@pytest.mark.parametrize(
    ("until_local", "problem", "offers_choice"),
    [("2027-11-07T01:30", "happens twice", True), ("2027-03-14T02:30", "does not exist", False)],
    ids=["repeated-hour", "skipped-hour"],
)
def test_the_fall_back_choice_shows_only_for_a_time_in_the_repeated_hour(
    operator: Client, until_local: str, problem: str, offers_choice: bool
) -> None:
    body = _refused_pause(operator, until_local)
    assert problem in (_Controls(body).error_of("until_local") or "")
    assert ("If the clocks fall back" in body) is offers_choice


def test_the_api_pauses_a_service_until_an_end_and_sets_it_active_again_audited(operator: Client) -> None:
    service = make_service()
    url = f"/api/services/{service.name}/mode"
    until = (timezone.now() + timedelta(hours=2)).replace(microsecond=0)
    body = {"mode": "paused", "reason": "model rollout", "until": until.isoformat()}
    response = operator.post(url, body, "application/json")
    assert response.status_code == 200, response.content
    got = response.json()
    assert got["mode"] == "paused" and got["changed"] is True and got["name"] == service.name
    assert got["mode_until"].replace("Z", "+00:00") == until.isoformat()
    service.refresh_from_db()
    assert (service.mode, service.mode_until) == (Service.Mode.PAUSED, until)
    event = AuditEvent.objects.get(event_type=EventType.SERVICE_MODE_CHANGED)
    assert event.reason == "model rollout" and event.actor_label == "operator"
    assert operator.post(url, body, "application/json").json()["changed"] is False  # already so: nothing audited
    assert AuditEvent.objects.filter(event_type=EventType.SERVICE_MODE_CHANGED).count() == 1

    again = operator.post(url, {"mode": "active", "reason": "rollout done"}, "application/json").json()
    assert (again["mode"], again["mode_until"], again["changed"]) == ("active", None, True)
    assert operator.get(f"/api/services/{service.name}").json()["mode_until"] is None


@pytest.mark.parametrize("mode", ["paused", "dry_run"])
def test_the_api_lists_the_overrides_a_pause_or_dry_run_sets_aside(operator: Client, mode: str) -> None:
    service = make_service()
    now = timezone.now().replace(microsecond=0)
    until = now + timedelta(hours=2)
    rule = GameDayRule.objects.create(name="National TV games", reason="tv", floor_replicas=25)
    window = {"service": service, "reason": "r"}
    floor = Override.objects.create(
        kind="floor", replicas=25, starts_at=now - timedelta(minutes=30), ends_at=now + timedelta(hours=4),
        rule=rule, **window,
    )  # fmt: skip
    pin = Override.objects.create(
        kind="pin", replicas=6, starts_at=now + timedelta(hours=1), ends_at=now + timedelta(hours=3),
        status=Override.Status.PENDING_APPROVAL, **window,
    )  # fmt: skip
    for status, starts_at in [
        (Override.Status.APPROVED, until + timedelta(minutes=5)),  # after the pause: applied as usual
        (Override.Status.CANCELLED, now),
    ]:
        Override.objects.create(
            kind="floor", replicas=9, starts_at=starts_at, ends_at=until + timedelta(hours=1), status=status, **window
        )
    url = f"/api/services/{service.name}/mode"
    body = {"mode": mode, "reason": "maintenance", "until": until.isoformat()}

    got = operator.post(url, body, "application/json").json()

    assert [o["id"] for o in got["set_aside"]] == [floor.pk, pin.pk]  # soonest first
    first, second = got["set_aside"]
    assert (first["kind"], first["replicas"], first["rule"], first["status"]) == ("floor", 25, rule.name, "approved")
    assert (second["kind"], second["replicas"], second["status"]) == ("pin", 6, "pending_approval")
    assert second["starts_at"].replace("Z", "+00:00") == pin.starts_at.isoformat()
    assert second["ends_at"].replace("Z", "+00:00") == pin.ends_at.isoformat()
    again = operator.post(url, body, "application/json").json()  # already so: still set aside
    assert again["changed"] is False and [o["id"] for o in again["set_aside"]] == [floor.pk, pin.pk]
    active = operator.post(url, {"mode": "active", "reason": "done"}, "application/json").json()
    assert active["set_aside"] == []


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"mode": "paused", "reason": "x"}, "until", "a pause needs an end"),
        ({"mode": "dry_run", "reason": "x", "until": "2026-01-15T19:30:00"}, "until", "give a UTC offset"),
        ({"mode": "paused", "reason": "x", "hours": 2}, "hours", "Extra inputs are not permitted"),
        ({"mode": "paused", "reason": "  ", "until": "+2h"}, "reason", "a reason is required"),
        ({"mode": "stopped", "reason": "x"}, "mode", "unknown mode 'stopped'"),
        ({"mode": "paused", "reason": "x", "until": "+25h"}, "until", "a pause may last at most 24 h"),
        ({"mode": "active", "reason": "x", "until": "+2h"}, "until", "an active service has no end"),
        ({"mode": "active", "reason": "x" * 501}, "reason", "at most 500 characters"),  # as the override's reason
    ],
)
def test_the_api_refuses_a_mode_change_naming_the_field(
    operator: Client, body: dict[str, Any], field: str, message: str
) -> None:
    service = make_service()
    if str(body.get("until", "")).startswith("+"):
        body = {**body, "until": (timezone.now() + timedelta(hours=int(body["until"][1:-1]))).isoformat()}
    response = operator.post(f"/api/services/{service.name}/mode", body, "application/json")
    assert response.status_code == 422, response.content
    got = response.json()
    # The schema's checks and Tipoff's own answer alike: the field, and every problem (here one) in `errors`.
    assert got["field"] == field and message in got["detail"]
    assert [e["field"] for e in got["errors"]] == [field] and message in got["errors"][0]["message"]
    service.refresh_from_db()
    assert (service.mode, service.mode_until) == (Service.Mode.ACTIVE, None) and not AuditEvent.objects.exists()


def test_a_viewer_cannot_change_the_mode_over_the_api(viewer: Client) -> None:
    service = make_service()
    response = viewer.post(f"/api/services/{service.name}/mode", {"mode": "active", "reason": "x"}, "application/json")
    assert response.status_code == 403
    service.refresh_from_db()
    assert service.mode == Service.Mode.ACTIVE
    assert not AuditEvent.objects.filter(event_type=EventType.SERVICE_MODE_CHANGED).exists()


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        # Each was accepted: the trend weight doubled the forecast, the sizing target sat under the SLO target.
        ({"forecast_trend": 50}, "forecast_trend", "must be in [0, 1]"),
        ({"sizing_target": 0.5}, "sizing_target", "at least the service's SLO target 0.999"),
        ({"scale_up_pods": 1_000_000_000_000}, "scale_up_pods", "must be in [0, 10000]"),
        ({"fallback_replicas": 99_999_999_999}, "fallback_replicas", "must be in [0, 10000]"),
        ({"fallback_replicas": 51}, "fallback_replicas", "at most the service's maximum 50"),
    ],
)
def test_the_api_and_the_form_hold_a_parameter_to_its_documented_range(
    admin: Client, params: dict[str, Any], field: str, message: str
) -> None:
    service = make_service(max_replicas=50)
    response = admin.put(
        f"/api/services/{service.name}/policy",
        {"params": params, "reason": "tune", "based_on_version": 1},
        content_type="application/json",
    )
    assert response.status_code == 422, response.content
    assert response.json()["field"] == field and message in response.json()["errors"][0]["message"]
    page = admin.post(f"/services/{service.name}/policy/edit/", form_post(params))
    assert page.status_code == 422 and message in " ".join(page.context["form"].field_errors()[field])
    assert Service.objects.get(pk=service.pk).policy_version == 1


NO_SIGNAL = {
    "model_sizing": False,
    "slo_guard": False,
    "prewarm": False,
    "target_utilization": 0,
    "target_rps_per_replica": 0,
    "target_in_flight_per_replica": 0,
}


@pytest.mark.parametrize(
    ("params", "field", "named"),
    [
        # Accepted, it decided "Held at 4: load within tolerance of target" with no rule at all.
        (NO_SIGNAL, "model_sizing", list(NO_SIGNAL)),
        # Accepted, the service could never scale out, not even on an SLO breach.
        ({"scale_up_pods": 0, "scale_up_percent": 0}, "scale_up_pods", ["scale_up_pods", "scale_up_percent"]),
    ],
)
def test_the_api_and_the_form_refuse_a_policy_that_cannot_scale_naming_the_fields(
    admin: Client, params: dict[str, Any], field: str, named: list[str]
) -> None:
    service = make_service()
    response = admin.put(
        f"/api/services/{service.name}/policy",
        {"params": params, "reason": "tune", "based_on_version": 1},
        content_type="application/json",
    )
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["field"] == field and [e["field"] for e in body["errors"]] == [field]
    assert all(name in body["errors"][0]["message"] for name in named), body
    page = admin.post(f"/services/{service.name}/policy/edit/", form_post(params))
    assert page.status_code == 422
    assert all(name in " ".join(page.context["form"].field_errors()[field]) for name in named)
    assert Service.objects.get(pk=service.pk).policy_version == 1


def test_the_allowed_column_says_the_range_the_form_checks(admin: Client) -> None:
    service = make_service(max_replicas=50)
    rows = {row["name"]: row["range"] for row in admin.get(f"/services/{service.name}/policy/").context["rows"]}
    assert rows["forecast_trend"] == "in [0, 1]"
    assert rows["sizing_target"] == "in (0, 1), at least the service's SLO target"
    assert rows["fallback_replicas"] == "in [0, 10000], at most the service's maximum"


def _probes(name: str, whole: bool) -> list[float]:
    """Values at and just past each end of a parameter's documented range (and around its 0 for "off")."""
    allowed = param_range(name)
    step = 1 if whole else 1e-6
    probes: list[float] = []
    for end, outward in ((allowed.low, -1), (allowed.high, 1)):
        if end is not None:
            probes += [end, end + outward * step, end - outward * step]
    if allowed.off:
        probes += [0, (allowed.low or 0) / 2]
    return [p for p in probes if not whole or float(p).is_integer()]


def test_every_parameters_range_is_enforced_identically_by_the_engine_the_form_and_the_api(admin: Client) -> None:
    # The engine's own check had been looser than the table the form and API read: a tolerance of 0.9 or a
    # utilization target of 5 passed it, so a policy written past them (a replay's JSON) ran unchecked.
    service = make_service(max_replicas=10_000, hard_max_replicas=10_000)
    version = service.policy_version
    for f in dataclasses.fields(PolicyParams):
        if isinstance(f.default, bool):
            continue
        allowed = param_range(f.name)
        for value in _probes(f.name, whole=isinstance(f.default, int)):
            expected = allowed.contains(value)
            # With the lowest correction at its least, the rule between the two (min ≤ max) never refuses one.
            params = {"forecast_correction_min": param_range("forecast_correction_min").low, f.name: value}
            try:
                PolicyParams.from_dict(params)
                engine = None
            except ValueError as exc:
                engine = str(exc)
            form = PolicyForm(form_post(params))
            response = admin.put(
                f"/api/services/{service.name}/policy",
                {"params": params, "reason": "tune", "based_on_version": version},
                content_type="application/json",
            )
            noted = dict(service_problems({f.name: value}, slo_target=service.slo_target, max_replicas=10_000))
            said = (f.name, value, engine, form.errors, response.json())
            assert (engine is None) == expected, said
            assert form.is_valid() == expected, said
            assert (response.status_code == 200) == (expected and not noted), said
            if response.status_code == 200:
                version = response.json()["version"]
            if not expected:
                # Each says the one range, read from the table.
                assert f"must be {allowed.describe()}" in (engine or ""), said
                assert f"must be {allowed.describe()}" in " ".join(form.field_errors()[f.name]), said
                error = response.json()["errors"][0]
                assert error["field"] == f.name and f"must be {allowed.describe()}" in error["message"], said
