"""The add/edit service page, its Test connection button, and the admin JSON API."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from scaling.audit import EventType
from scaling.backends import get_actuator
from scaling.models import AuditEvent, Service
from tests.backends.conftest import SAGEMAKER_FORM, create_sagemaker_endpoint, register_target, sagemaker_service
from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client: Client) -> Client:
    client.force_login(make_user("root", role="admin"))
    return client


def test_it_shows_the_form_to_administrators_only(client: Client) -> None:
    client.force_login(make_user("op", role="operator"))
    assert client.get("/services/new/").status_code == 403
    client.force_login(make_user("root", role="admin"))
    response = client.get("/services/new/")
    assert response.status_code == 200
    assert b"Test connection" in response.content


def test_it_adds_a_sagemaker_service_with_its_identifiers(admin: Client) -> None:
    response = admin.post("/services/new/", SAGEMAKER_FORM)

    assert response.status_code == 302
    service = Service.objects.get(name="win-probability")
    assert (service.backend, service.metric_source, service.max_replicas) == ("sagemaker", "cloudwatch", 10)
    assert service.backend_config == {
        "region": "us-east-1",  # none given: the Tipoff process's, stored (process_region)
        "endpoint_name": "win-prob",
        "variant_name": "AllTraffic",
        "autoscaling_mode": "refuse",
        "metrics_lag_s": 120,
    }
    assert AuditEvent.objects.filter(service=service, event_type=EventType.SERVICE_CREATED).exists()


def test_it_names_the_missing_identifier(admin: Client) -> None:
    response = admin.post("/services/new/", SAGEMAKER_FORM | {"endpoint_name": ""})

    assert response.status_code == 422
    assert "the SageMaker endpoint name is required" in response.content.decode()
    assert not Service.objects.exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("region", "us east-1", "&#x27;us east-1&#x27; is not an AWS region name"),
        ("endpoint_url", "http://bad host", "&#x27;http://bad host&#x27; is not a URL botocore can call"),
        ("endpoint_url", "https://", "&#x27;https://&#x27; is not a URL botocore can call"),
    ],
)
def test_it_names_a_malformed_region_or_endpoint_url(admin: Client, field: str, value: str, message: str) -> None:
    for path in ("/services/new/", "/services/test-connection/"):
        response = admin.post(path, SAGEMAKER_FORM | {field: value}, headers={"HX-Request": "true"})

        assert response.status_code == 422, path
        assert message in response.content.decode(), path
    assert not Service.objects.exists()


def test_test_connection_reports_observed_counts(admin: Client, aws: str) -> None:
    create_sagemaker_endpoint(aws, instances=2)

    response = admin.post("/services/test-connection/", SAGEMAKER_FORM, headers={"HX-Request": "true"})

    text = response.content.decode()
    assert response.status_code == 200
    assert "endpoint InService; 2 ready of 2 provisioned" in text
    assert "<html" not in text  # the partial only
    assert not Service.objects.exists()  # nothing saved


def test_test_connection_reports_an_unknown_endpoint_in_plain_words(admin: Client, aws: str) -> None:
    response = admin.post(
        "/services/test-connection/", SAGEMAKER_FORM | {"endpoint_name": "typo"}, headers={"HX-Request": "true"}
    )
    assert "unknown resource: SageMaker endpoint &#x27;typo&#x27;" in response.content.decode()


def test_editing_needs_a_reason_and_restores_autoscaling_when_the_mode_changes(admin: Client, aws: str) -> None:
    create_sagemaker_endpoint(aws, instances=2)
    register_target(aws, "sagemaker", "endpoint/win-prob/variant/AllTraffic", "sagemaker:variant:DesiredInstanceCount")
    service = sagemaker_service(autoscaling_mode="bounds")
    get_actuator(service).set_capacity(service, 4, timezone.now())
    form = SAGEMAKER_FORM | {"autoscaling_mode": "refuse"}

    assert admin.post(f"/services/{service.name}/edit/", form).status_code == 422
    response = admin.post(f"/services/{service.name}/edit/", form | {"reason": "hand back to AAS"})

    assert response.status_code == 302
    service.refresh_from_db()
    assert service.backend_config["autoscaling_mode"] == "refuse"
    assert AuditEvent.objects.filter(service=service, event_type=EventType.SERVICE_UPDATED).exists()
    assert AuditEvent.objects.filter(service=service, event_type=EventType.AUTOSCALING_RESTORED).exists()


def _json(client: Client, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    call = getattr(client, method)
    return call(path, data=json.dumps(body or {}), content_type="application/json")


def test_the_api_creates_a_service_and_tests_its_connection(admin: Client, aws: str) -> None:
    create_sagemaker_endpoint(aws, instances=3)
    body: dict[str, Any] = {"name": "win-probability", "display_name": "Win probability", "backend": "sagemaker"}
    body |= {"metric_source": "cloudwatch", "endpoint_name": "win-prob", "min_replicas": 1, "max_replicas": 8}
    body |= {"hard_max_replicas": 10, "price_per_replica_hour": 1.0, "slo_latency_ms": 300, "provisioning_delay_s": 60}

    created = _json(admin, "post", "/api/admin/services", body)
    assert created.status_code == 201, created.content
    assert created.json()["backend_config"]["endpoint_name"] == "win-prob"

    probe = _json(admin, "post", "/api/admin/services/win-probability/test-connection")
    assert probe.status_code == 200
    assert probe.json()["lines"][0]["text"].endswith("3 ready of 3 provisioned")

    updated = _json(admin, "put", "/api/admin/services/win-probability", {"max_replicas": 9, "reason": "more room"})
    assert updated.status_code == 200, updated.content
    assert updated.json()["max_replicas"] == 9


def test_the_api_refuses_non_administrators(client: Client) -> None:
    client.force_login(make_user("op", role="operator"))
    assert _json(client, "post", "/api/admin/services", {"name": "x"}).status_code == 403


def test_a_price_past_any_real_instance_is_a_typo_named_as_such(admin: Client) -> None:
    response = admin.post("/services/new/", SAGEMAKER_FORM | {"price_per_replica_hour": "1e16"})

    assert response.status_code == 422
    assert "less than or equal to 10000" in response.content.decode()
    assert not Service.objects.exists()


def test_the_api_changes_one_field_of_a_simulated_service(admin: Client) -> None:
    from tests.factories import make_service

    service = make_service()

    response = _json(
        admin, "put", f"/api/admin/services/{service.name}", {"price_per_replica_hour": 2.5, "reason": "new price"}
    )

    assert response.status_code == 200, response.content
    service.refresh_from_db()
    assert service.price_per_replica_hour == 2.5 and service.backend_config == {}


def test_a_maximum_below_an_approved_floor_is_refused_by_the_api_and_the_form(admin: Client) -> None:
    from datetime import timedelta

    from scaling.models import Override
    from tests.factories import make_service

    service = make_service("player-props", max_replicas=50)
    now = timezone.now()
    floor = Override.objects.create(
        service=service, kind="floor", replicas=25, reason="tip-off", starts_at=now, ends_at=now + timedelta(hours=2)
    )

    response = _json(admin, "put", "/api/admin/services/player-props", {"max_replicas": 20, "reason": "cap spend"})

    assert response.status_code == 422, response.content
    assert response.json()["field"] == "max_replicas" and f"#{floor.pk} floor 25" in response.json()["detail"]
    form = {"display_name": "Player props", "enabled": "on", "backend": "simulated", "metric_source": "simulated"}
    form |= {"autoscaling_mode": "refuse"}
    form |= {"min_replicas": "1", "max_replicas": "20", "hard_max_replicas": "100", "reason": "cap spend"}
    form |= {"price_per_replica_hour": "1", "slo_latency_ms": "300", "provisioning_delay_s": "180"}
    page = admin.post("/services/player-props/edit/", form)
    assert page.context["form"].errors["max_replicas"][0].startswith("20 is below #")
    service.refresh_from_db()
    assert service.max_replicas == 50


def test_the_api_and_the_form_record_the_reason_a_service_was_added(admin: Client) -> None:
    body: dict[str, Any] = {key: value for key, value in SAGEMAKER_FORM.items() if key != "enabled"}
    body |= {"name": "from-api", "reason": "the new win-probability model goes live for the playoffs"}
    created = _json(admin, "post", "/api/admin/services", body)
    assert created.status_code == 201, created.content
    shadow = {"name": "from-form", "display_name": "Win probability (shadow)", "endpoint_name": "win-prob-shadow"}
    shadow |= {"reason": "shadow copy for tests"}
    added = admin.post("/services/new/", SAGEMAKER_FORM | shadow)
    assert added.status_code == 302

    reasons = dict(
        AuditEvent.objects.filter(event_type=EventType.SERVICE_CREATED).values_list("service__name", "reason")
    )
    assert reasons == {
        "from-api": "the new win-probability model goes live for the playoffs",
        "from-form": "shadow copy for tests",
    }
    assert 'name="reason"' in admin.get("/services/new/").content.decode()  # the form asks for it


def test_a_service_added_without_a_reason_says_it_was_registered(admin: Client) -> None:
    assert admin.post("/services/new/", SAGEMAKER_FORM).status_code == 302
    event = AuditEvent.objects.get(event_type=EventType.SERVICE_CREATED)
    assert event.reason == "service win-probability registered"


@pytest.mark.parametrize(
    "backend_fields",
    [
        {"backend": "sagemaker", "endpoint_name": "win-prob"},
        {"backend": "ecs", "cluster": "serving", "service": "game-summaries"},
    ],
)
def test_a_real_backend_on_simulated_metrics_is_refused_by_the_form_the_api_and_test_connection(
    admin: Client, backend_fields: dict[str, str]
) -> None:
    form = SAGEMAKER_FORM | backend_fields | {"metric_source": "simulated"}

    page = admin.post("/services/new/", form)
    assert page.status_code == 422
    assert "invented" in page.context["form"].errors["metric_source"][0]
    body = {k: v for k, v in form.items() if k != "enabled"}
    api = _json(admin, "post", "/api/admin/services", body)
    assert api.status_code == 422, api.content
    assert api.json()["field"] == "metric_source" and "CloudWatch or Prometheus" in api.json()["detail"]
    probe = admin.post("/services/test-connection/", form, headers={"HX-Request": "true"})
    assert probe.status_code == 422 and "metric_source" in probe.content.decode()
    assert not Service.objects.exists()


def test_test_connection_of_a_stored_real_service_on_simulated_metrics_is_an_error(admin: Client, aws: str) -> None:
    create_sagemaker_endpoint(aws, instances=2)
    service = sagemaker_service()
    Service.objects.filter(pk=service.pk).update(metric_source="simulated")  # stored before the check existed

    probe = _json(admin, "post", f"/api/admin/services/{service.name}/test-connection")

    assert probe.status_code == 200
    assert not probe.json()["ok"]
    assert any(line["level"] == "error" and "invented" in line["text"] for line in probe.json()["lines"])


def test_the_reported_absurd_serving_model_is_refused_naming_the_field_and_its_range(admin: Client) -> None:
    from tests.factories import make_service

    service = make_service("box-scores")
    sent = {"concurrency": 1_000_000_000, "service_time_ms": 1e9, "slo_latency_ms": 1e12, "reason": "x"}

    response = _json(admin, "put", "/api/admin/services/box-scores", sent)

    assert response.status_code == 422, response.content
    body = response.json()
    assert body["field"] == "concurrency" and "from 1 to 1,000" in body["detail"], body
    service.refresh_from_db()
    assert service.concurrency == 4


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("concurrency", 1001, "from 1 to 1,000"),
        ("service_time_ms", 600_001, "from 0.1 to 600,000"),
        ("slo_latency_ms", 3_600_001, "from 1 to 3,600,000"),
        ("metrics_lag_s", 3601, "from 0 to 3,600"),
        ("min_replicas", 10_001, "from 0 to 10,000"),
        ("max_replicas", 10_001, "from 1 to 10,000"),
        ("hard_max_replicas", 10_001, "from 1 to 10,000"),
        ("provisioning_delay_s", 86_401, "from 0 to 86,400"),
    ],
)
def test_a_number_past_its_upper_bound_is_refused_by_the_api_and_the_form(
    admin: Client, field: str, value: float, allowed: str
) -> None:
    body: dict[str, Any] = {key: v for key, v in SAGEMAKER_FORM.items() if key != "enabled"}
    body |= {"min_replicas": 1, "max_replicas": 10_000, "hard_max_replicas": 10_000} | {field: value}

    api = _json(admin, "post", "/api/admin/services", body)
    page = admin.post("/services/new/", {**body, field: str(value)})

    assert api.status_code == 422, api.content
    assert api.json()["field"] == field and allowed in api.json()["detail"], api.json()
    assert page.status_code == 422
    assert allowed in " ".join(page.context["form"].errors[field])
    assert not Service.objects.exists()


def test_the_largest_allowed_values_are_accepted(admin: Client) -> None:
    body: dict[str, Any] = {key: v for key, v in SAGEMAKER_FORM.items() if key != "enabled"}
    body |= {"min_replicas": 10_000, "max_replicas": 10_000, "hard_max_replicas": 10_000, "concurrency": 1000}
    body |= {"service_time_ms": 600_000, "slo_latency_ms": 3_600_000, "slo_target": 0.99}
    body |= {"metrics_lag_s": 3600, "provisioning_delay_s": 86_400}

    assert _json(admin, "post", "/api/admin/services", body).status_code == 201


def test_a_second_service_on_the_same_endpoint_variant_and_region_is_refused_naming_the_first(admin: Client) -> None:
    assert admin.post("/services/new/", SAGEMAKER_FORM | {"region": "us-east-1"}).status_code == 302
    body: dict[str, Any] = {k: v for k, v in SAGEMAKER_FORM.items() if k != "enabled"}
    body |= {"name": "moto-dup", "display_name": "Moto dup", "region": "us-east-1", "endpoint_name": "WIN-PROB"}

    api = _json(admin, "post", "/api/admin/services", body)
    page = admin.post("/services/new/", body)

    assert api.status_code == 422, api.content
    assert api.json()["field"] == "endpoint_name" and "win-probability" in api.json()["detail"]
    assert page.status_code == 422 and "win-probability" in page.context["form"].errors["endpoint_name"][0]
    # Another variant, or the same endpoint in another region, is another target.
    canary = body | {"variant_name": "Canary", "display_name": "Canary"}
    assert _json(admin, "post", "/api/admin/services", canary).status_code == 201
    other_region = body | {"name": "west", "display_name": "West", "region": "us-west-2"}
    assert _json(admin, "post", "/api/admin/services", other_region).status_code == 201


def test_an_edit_that_points_a_service_at_anothers_ecs_service_is_refused(admin: Client) -> None:
    ecs: dict[str, Any] = {k: v for k, v in SAGEMAKER_FORM.items() if k not in ("enabled", "endpoint_name")}
    ecs |= {"backend": "ecs", "metric_source": "prometheus", "prometheus_url": "http://prom:9090"}
    ecs |= {"promql": {"rps": "sum(rate(x[1m]))"}, "cluster": "serving", "service": "game-summaries"}
    assert _json(admin, "post", "/api/admin/services", ecs | {"name": "summaries"}).status_code == 201
    arn = "arn:aws:ecs:us-east-1:123456789012:service/serving/other"
    other = {"name": "other", "display_name": "Other", "service": arn}
    assert _json(admin, "post", "/api/admin/services", ecs | other).status_code == 201

    moved = _json(admin, "put", "/api/admin/services/other", {"service": "game-summaries", "reason": "typo"})

    assert moved.status_code == 422, moved.content
    assert moved.json()["field"] == "service" and "summaries" in moved.json()["detail"]
    assert Service.objects.get(name="other").backend_config["service"] == arn


def test_the_database_refuses_a_second_service_on_one_target() -> None:
    from django.db import IntegrityError, transaction

    from tests.factories import make_service

    make_service("a", backend="sagemaker", target_key="sagemaker|us-east-1||endpoint/win-prob/variant/allTraffic")
    with pytest.raises(IntegrityError), transaction.atomic():
        make_service("b", backend="sagemaker", target_key="sagemaker|us-east-1||endpoint/win-prob/variant/allTraffic")


@pytest.mark.parametrize(
    ("sent", "field", "words"),
    [
        ({"unknown_field": 1, "reason": "x"}, "unknown_field", "Extra inputs are not permitted"),
        ({"name": "renamed", "reason": "x"}, "name", "not editable"),
    ],
)
def test_an_edit_naming_a_field_it_cannot_set_is_refused_naming_it(
    admin: Client, sent: dict[str, Any], field: str, words: str
) -> None:
    from tests.factories import make_service

    make_service("box-scores")

    response = _json(admin, "put", "/api/admin/services/box-scores", sent)

    assert response.status_code == 422, response.content
    assert response.json()["field"] == field and words in response.json()["detail"]
    assert Service.objects.filter(name="box-scores").exists()


def test_the_api_sets_and_keeps_the_documented_backend_config_keys(admin: Client) -> None:
    extras: dict[str, Any] = {"period_s": 300, "lookback_s": 1200, "publication_lag_s": 90, "cpu_cores": 2.0}
    extras |= {"latency_stats": {"p95_ms": "Maximum"}, "breaker_errors": 5, "breaker_cooloff_s": 600}
    body: dict[str, Any] = {k: v for k, v in SAGEMAKER_FORM.items() if k != "enabled"} | extras

    created = _json(admin, "post", "/api/admin/services", body)
    assert created.status_code == 201, created.content
    assert {k: created.json()["backend_config"].get(k) for k in extras} == extras
    edited = _json(admin, "put", "/api/admin/services/win-probability", {"period_s": 60, "reason": "finer"})
    assert edited.status_code == 200, edited.content
    assert {k: edited.json()["backend_config"].get(k) for k in extras} == extras | {"period_s": 60}

    refused = _json(admin, "put", "/api/admin/services/win-probability", {"period_s": 45, "reason": "x"})
    assert refused.status_code == 422
    assert refused.json()["field"] == "period_s" and "multiple of 60" in refused.json()["detail"]


def test_the_api_sets_a_prometheus_bearer_token_variable(admin: Client) -> None:
    body: dict[str, Any] = {"name": "props", "display_name": "Props", "backend": "simulated"}
    body |= {"metric_source": "prometheus", "prometheus_url": "http://prom:9090", "promql": {"rps": "sum(x)"}}
    body |= {k: SAGEMAKER_FORM[k] for k in ("min_replicas", "max_replicas", "hard_max_replicas", "slo_latency_ms")}
    body |= {k: SAGEMAKER_FORM[k] for k in ("price_per_replica_hour", "provisioning_delay_s")}

    created = _json(admin, "post", "/api/admin/services", body | {"bearer_token_env": "TIPOFF_PROM_TOKEN_PROPS"})

    assert created.status_code == 201, created.content
    assert created.json()["backend_config"]["bearer_token_env"] == "TIPOFF_PROM_TOKEN_PROPS"


@pytest.mark.parametrize("variable", ["SECRET_KEY", "AWS_SECRET_ACCESS_KEY", "DATABASE_URL"])
def test_the_api_refuses_a_bearer_token_variable_not_named_for_prometheus(admin: Client, variable: str) -> None:
    # Any variable was taken: with a URL of one's choosing, Test connection sent the server's secret to it.
    body: dict[str, Any] = {"name": "props", "display_name": "Props", "backend": "simulated"}
    body |= {"metric_source": "prometheus", "prometheus_url": "http://127.0.0.1:9871/", "promql": {"rps": "sum(x)"}}

    refused = _json(admin, "post", "/api/admin/services", body | {"bearer_token_env": variable})

    assert refused.status_code == 422, refused.content
    assert refused.json()["field"] == "bearer_token_env"
    assert "must name an environment variable beginning TIPOFF_PROM_TOKEN_" in refused.json()["detail"]
    assert variable in refused.json()["detail"]
    assert not Service.objects.exists()


def test_the_create_schema_states_what_is_required_and_defaults_what_the_form_defaults(admin: Client) -> None:
    from dashboard.services_admin import ServiceForm

    schemas = admin.get("/api/openapi.json").json()["components"]["schemas"]
    create, update = schemas["ServiceCreateIn"], schemas["ServiceUpdateIn"]

    assert set(create["required"]) == {"name", "display_name", "backend", "metric_source"}
    assert create["properties"]["provisioning_delay_s"]["default"] == 180
    assert not update.get("required")
    body = {"name": "tiny", "display_name": "Tiny", "backend": "simulated", "metric_source": "simulated"}
    assert _json(admin, "post", "/api/admin/services", body).status_code == 201
    service = Service.objects.get(name="tiny")
    for field in ("min_replicas", "max_replicas", "hard_max_replicas", "provisioning_delay_s", "slo_latency_ms"):
        assert getattr(service, field) == ServiceForm.base_fields[field].initial, field
    missing = _json(admin, "post", "/api/admin/services", {k: v for k, v in body.items() if k != "metric_source"})
    assert missing.status_code == 422 and missing.json()["field"] == "metric_source"


def test_an_edit_clears_metrics_lag_and_an_optional_key_by_naming_them(admin: Client) -> None:
    body: dict[str, Any] = {"name": "props", "display_name": "Props", "backend": "simulated"}
    body |= {"metric_source": "prometheus", "prometheus_url": "http://prom:9090", "promql": {"rps": "sum(x)"}}
    body |= {"metrics_lag_s": 30, "breaker_errors": 5}
    assert _json(admin, "post", "/api/admin/services", body).status_code == 201

    kept = _json(admin, "put", "/api/admin/services/props", {"metrics_lag_s": None, "reason": "null keeps"})
    assert kept.json()["backend_config"]["metrics_lag_s"] == 30
    cleared = _json(
        admin, "put", "/api/admin/services/props", {"clear": ["metrics_lag_s", "breaker_errors"], "reason": "x"}
    )
    assert cleared.status_code == 200, cleared.content
    assert "metrics_lag_s" not in cleared.json()["backend_config"]
    assert "breaker_errors" not in cleared.json()["backend_config"]

    refused = _json(admin, "put", "/api/admin/services/props", {"clear": ["display_name"], "reason": "x"})
    assert refused.status_code == 422 and refused.json()["field"] == "clear"
    both = _json(admin, "put", "/api/admin/services/props", {"clear": ["period_s"], "period_s": 60, "reason": "x"})
    assert both.status_code == 422 and both.json()["field"] == "clear"


def test_an_endpoint_arn_typed_as_the_endpoint_name_is_refused_asking_for_the_name(admin: Client) -> None:
    arn = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/win-prob"

    page = admin.post("/services/new/", SAGEMAKER_FORM | {"endpoint_name": arn})
    api = _json(admin, "post", "/api/admin/services", SAGEMAKER_FORM | {"endpoint_name": arn, "enabled": True})

    assert page.status_code == 422
    assert "give the endpoint name, not its ARN" in page.context["form"].errors["endpoint_name"][0]
    assert "'win-prob'" in page.context["form"].errors["endpoint_name"][0]
    assert api.status_code == 422 and api.json()["field"] == "endpoint_name"
    assert not Service.objects.exists()


def test_a_region_botocore_does_not_know_for_the_backend_is_refused(admin: Client) -> None:
    page = admin.post("/services/new/", SAGEMAKER_FORM | {"region": "xx-nowhere-1"})
    api = _json(admin, "post", "/api/admin/services", SAGEMAKER_FORM | {"region": "xx-nowhere-1", "enabled": True})

    assert page.status_code == 422
    assert "not an AWS region where SageMaker runs" in page.context["form"].errors["region"][0]
    assert api.status_code == 422 and api.json()["field"] == "region"
    # A real region passes; so does any region of an AWS-compatible endpoint (endpoint_url), which botocore
    # cannot know.
    assert admin.post("/services/new/", SAGEMAKER_FORM | {"region": "eu-west-1"}).status_code == 302
    compatible = {"name": "compat", "display_name": "Compat", "region": "xx-nowhere-1"}
    compatible |= {"endpoint_url": "http://127.0.0.1:5000"}
    assert admin.post("/services/new/", SAGEMAKER_FORM | compatible).status_code == 302


def test_a_display_name_another_service_has_is_refused_in_any_case(admin: Client) -> None:
    from tests.factories import make_service

    make_service("player-props", display_name="Prom props")
    other = make_service("box-scores", display_name="Box scores")
    body = {"name": "props-2", "display_name": "PROM PROPS", "backend": "simulated", "metric_source": "simulated"}
    form = SAGEMAKER_FORM | body | {"min_replicas": "1", "max_replicas": "10", "hard_max_replicas": "20"}

    api = _json(admin, "post", "/api/admin/services", body)
    page = admin.post("/services/new/", form)
    edit = _json(admin, "put", f"/api/admin/services/{other.name}", {"display_name": "prom props", "reason": "x"})

    assert api.status_code == 422 and api.json()["field"] == "display_name"
    assert "player-props" in api.json()["detail"]
    assert page.status_code == 422 and "player-props" in page.context["form"].errors["display_name"][0]
    assert edit.status_code == 422 and edit.json()["field"] == "display_name"
    # A service keeps its own display name, in a new case too.
    same = _json(admin, "put", f"/api/admin/services/{other.name}", {"display_name": "Box Scores", "reason": "case"})
    assert same.status_code == 200, same.content


def _prometheus_body(name: str) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "display_name": name.title(), "backend": "simulated"}
    body |= {"metric_source": "prometheus", "prometheus_url": "http://prom:9090", "promql": {"rps": "sum(x)"}}
    body |= {k: SAGEMAKER_FORM[k] for k in ("min_replicas", "max_replicas", "hard_max_replicas", "slo_latency_ms")}
    return body | {k: SAGEMAKER_FORM[k] for k in ("price_per_replica_hour", "provisioning_delay_s")}


def test_an_unknown_promql_signal_is_refused_by_the_api_not_dropped(admin: Client) -> None:
    body = _prometheus_body("props")
    refused = _json(admin, "post", "/api/admin/services", body | {"promql": {"rps": "sum(x)", "p95": "y"}})
    assert refused.status_code == 422, refused.content
    assert refused.json()["field"] == "promql" and "p95" in refused.json()["detail"]
    assert not Service.objects.filter(name="props").exists()

    assert _json(admin, "post", "/api/admin/services", body).status_code == 201
    edited = _json(admin, "put", "/api/admin/services/props", {"promql": {"rps": "x", "p95": "y"}, "reason": "typo"})
    assert edited.status_code == 422 and edited.json()["field"] == "promql", edited.content
    assert Service.objects.get(name="props").backend_config["promql"] == {"rps": "sum(x)"}


def test_a_refused_key_the_form_does_not_show_is_named_once_in_the_detail(admin: Client) -> None:
    body = {k: v for k, v in SAGEMAKER_FORM.items() if k != "enabled"}
    assert _json(admin, "post", "/api/admin/services", body).status_code == 201
    refused = _json(admin, "put", "/api/admin/services/win-probability", {"period_s": 45, "reason": "x"})
    assert refused.status_code == 422
    detail, [error] = refused.json()["detail"], refused.json()["errors"]
    assert detail.count("period_s") == 1 and error["message"].count("period_s") == 0, refused.json()


# A simulated service as the API takes it, and as the form posts it (the form's starting values).
SIMULATED_BODY = {"name": "big", "display_name": "Big", "backend": "simulated", "metric_source": "simulated"}
SIMULATED_FORM = SIMULATED_BODY | {
    "enabled": "on",
    "autoscaling_mode": "refuse",
    "min_replicas": "1",
    "max_replicas": "10",
    "hard_max_replicas": "20",
    "price_per_replica_hour": "1",
    "slo_latency_ms": "300",
    "provisioning_delay_s": "180",
}


def test_a_maximum_above_the_default_hard_limit_it_was_not_given_says_the_limit_is_the_default(
    admin: Client,
) -> None:
    # Refused with "must be at least max_replicas (30)" on a hard_max_replicas nobody had sent.
    said = (
        "max_replicas 30 exceeds hard_max_replicas 20 (the default; set hard_max_replicas to at least 30 to raise it)"
    )
    api = _json(admin, "post", "/api/admin/services", SIMULATED_BODY | {"max_replicas": 30})
    page = admin.post("/services/new/", SIMULATED_FORM | {"max_replicas": "30"})

    assert api.status_code == 422 and api.json()["field"] == "hard_max_replicas"
    assert api.json()["detail"] == f"hard_max_replicas: {said}"
    assert page.status_code == 422 and page.context["form"].errors["hard_max_replicas"] == [said]
    # A limit that was given is named as such; one given high enough is taken.
    given = _json(admin, "post", "/api/admin/services", SIMULATED_BODY | {"max_replicas": 30, "hard_max_replicas": 25})
    assert given.status_code == 422
    assert given.json()["detail"] == "hard_max_replicas: must be at least max_replicas (30)"
    raised = _json(admin, "post", "/api/admin/services", SIMULATED_BODY | {"max_replicas": 30, "hard_max_replicas": 30})
    assert raised.status_code == 201 and Service.objects.get(name="big").hard_max_replicas == 30


def test_a_minimum_above_the_default_maximum_it_was_not_given_says_the_maximum_is_the_default(admin: Client) -> None:
    api = _json(admin, "post", "/api/admin/services", SIMULATED_BODY | {"min_replicas": 15, "hard_max_replicas": 40})

    assert api.status_code == 422 and api.json()["field"] == "max_replicas"
    assert api.json()["detail"] == (
        "max_replicas: min_replicas 15 exceeds max_replicas 10 "
        "(the default; set max_replicas to at least 15 to raise it)"
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("region", "xx-nowhere-1"), ("region", "us-east-1"), ("endpoint_url", "http://127.0.0.1:5000")],
)
def test_a_simulated_service_takes_no_aws_setting_and_says_so_without_naming_cloudwatch(
    admin: Client, field: str, value: str
) -> None:
    # A simulated service with a region botocore does not know was told it is "not an AWS region where CloudWatch
    # runs": it reads no CloudWatch and makes no AWS call at all.
    api = _json(admin, "post", "/api/admin/services", SIMULATED_BODY | {field: value})
    page = admin.post("/services/new/", SIMULATED_FORM | {field: value})

    said = f"a simulated service makes no AWS calls, so it takes no {field}: leave {field} empty"
    assert api.status_code == 422 and api.json()["field"] == field and api.json()["detail"] == f"{field}: {said}"
    assert page.status_code == 422 and page.context["form"].errors[field] == [said]
    assert "CloudWatch" not in api.json()["detail"]
    assert not Service.objects.exists()
    assert _json(admin, "post", "/api/admin/services", SIMULATED_BODY | {field: ""}).status_code == 201


def _sagemaker_body(name: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {k: v for k, v in SAGEMAKER_FORM.items() if k not in ("enabled", "region")}
    return body | {"name": name, "display_name": name.title()} | fields


def _process_region(monkeypatch: pytest.MonkeyPatch, region: str | None) -> None:
    """This process's region, as boto3 would find it, and nothing else: no AWS_DEFAULT_REGION, no profile."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    if region:
        monkeypatch.setenv("AWS_REGION", region)


def test_a_service_saved_without_a_region_stores_the_one_it_was_saved_under_for_every_process(
    admin: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The key of one service per endpoint read the region of whichever process computed it: a web process in
    # eu-west-1 keyed the service there, a worker in us-west-2 scaled the endpoint of us-west-2.
    from scaling.backends.aws import region_of
    from scaling.service_config import target_key

    _process_region(monkeypatch, "eu-west-1")
    created = _json(admin, "post", "/api/admin/services", _sagemaker_body("web"))
    assert created.status_code == 201, created.content
    assert created.json()["backend_config"]["region"] == "eu-west-1"
    service = Service.objects.get(name="web")
    assert service.target_key == "sagemaker|eu-west-1||endpoint/win-prob/variant/alltraffic"

    _process_region(monkeypatch, "us-west-2")  # a worker, or the web process once moved
    assert target_key(service.backend, service.backend_config) == service.target_key
    assert region_of(service.backend_config) == "eu-west-1"
    twin = _json(admin, "post", "/api/admin/services", _sagemaker_body("twin", region="eu-west-1"))
    assert twin.status_code == 422 and twin.json()["field"] == "endpoint_name"
    assert "service web (Web) already manages" in twin.json()["detail"] and "in eu-west-1" in twin.json()["detail"]
    # An edit that does not name the region keeps the stored one, whatever this process's; the page shows it.
    edited = _json(admin, "put", "/api/admin/services/web", {"max_replicas": 9, "reason": "room"})
    assert edited.status_code == 200 and edited.json()["backend_config"]["region"] == "eu-west-1"
    assert 'value="eu-west-1"' in admin.get("/services/web/edit/").content.decode()


def test_a_sagemaker_or_ecs_service_with_no_region_to_take_is_refused_naming_the_region(
    admin: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    _process_region(monkeypatch, None)
    api = _json(admin, "post", "/api/admin/services", _sagemaker_body("lost"))
    page = admin.post("/services/new/", SAGEMAKER_FORM | {"region": ""})

    said = (
        "a SageMaker or ECS service needs its region, e.g. us-east-1: none was given, and this Tipoff process "
        "has no AWS_REGION, AWS_DEFAULT_REGION or profile region to take it from"
    )
    assert api.status_code == 422 and api.json()["field"] == "region" and api.json()["detail"] == f"region: {said}"
    assert page.status_code == 422 and page.context["form"].errors["region"] == [said]
    # A region this process has but AWS does not is named as this process's.
    _process_region(monkeypatch, "xx-nowhere-1")
    typo = _json(admin, "post", "/api/admin/services", _sagemaker_body("typo"))
    assert typo.status_code == 422 and typo.json()["field"] == "region"
    assert typo.json()["detail"].startswith("region: 'xx-nowhere-1' is not an AWS region where SageMaker runs")
    assert typo.json()["detail"].endswith("(taken from this Tipoff process, as none was given)")
    assert not Service.objects.exists()
