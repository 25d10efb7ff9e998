"""Every 4xx the API answers has one shape: {"detail": str, "field": str, "errors": [{"field", "message"}]}."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from dashboard.api_errors import field_name
from scaling.models import AuditEvent, Override, Service
from tests.factories import make_service, make_user

pytestmark = pytest.mark.django_db

UNTIL = "2030-01-15T23:00:00-05:00"


@pytest.fixture
def operator(client: Client) -> Client:
    client.force_login(make_user("operator", "operator"))
    return client


def error_of(response: Any, status: int) -> dict[str, Any]:
    """The body, checked to be the one shape."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["field"], str)
    assert all(set(e) == {"field", "message"} for e in body["errors"]), body
    if body["errors"]:
        assert body["field"] == body["errors"][0]["field"]
    return body


def refused_field(response: Any) -> tuple[str, list[str]]:
    body = error_of(response, 422)
    return body["field"], [e["field"] for e in body["errors"]]


def mode(client: Client, body: Any, name: str = "win-probability") -> Any:
    return client.post(f"/api/services/{name}/mode", body, "application/json")


def test_a_missing_field_is_named(operator: Client) -> None:
    make_service()
    body = error_of(mode(operator, {"mode": "paused", "until": UNTIL}), 422)
    assert body == {
        "detail": "reason: Field required",
        "field": "reason",
        "errors": [{"field": "reason", "message": "Field required"}],
    }


def test_a_wrongly_typed_field_is_named_with_its_place_in_a_list(operator: Client) -> None:
    make_service()
    sent = {"services": ["win-probability", 3], "kind": "pin", "replicas": "many", "ends_at": UNTIL, "reason": "r"}
    response = operator.post("/api/overrides", sent, "application/json")
    assert refused_field(response) == ("services.1", ["services.1", "replicas"])
    assert "replicas: Input should be a valid integer" in response.json()["detail"]
    assert not Override.objects.exists()


def test_an_extra_field_is_named(operator: Client) -> None:
    make_service()
    response = mode(operator, {"mode": "paused", "reason": "x", "until": UNTIL, "hours": 2})
    assert refused_field(response) == ("hours", ["hours"])
    assert "Extra inputs are not permitted" in response.json()["errors"][0]["message"]
    assert not AuditEvent.objects.exists()


def test_a_body_that_is_no_object_is_named_as_the_body(operator: Client) -> None:
    make_service()
    assert refused_field(mode(operator, [1, 2])) == ("body", ["body"])
    assert error_of(mode(operator, "not json"), 400)["errors"] == []


def test_a_bad_query_value_is_named_each_one(operator: Client) -> None:
    response = operator.get("/api/audit/events?before=x&limit=0")
    assert refused_field(response) == ("before", ["before", "limit"])
    service = make_service()
    assert refused_field(operator.get(f"/api/services/{service.name}/metrics", {"range": "2h"}))[0] == "range"


def test_a_bad_path_value_is_named_or_not_found(operator: Client) -> None:
    assert refused_field(operator.get("/api/decisions/abc")) == ("decision_id", ["decision_id"])
    # A route whose converter takes only numbers does not match at all: Django's 404, in the same shape.
    assert error_of(operator.get("/api/overrides/abc"), 404) == {"detail": "Not Found", "field": "", "errors": []}


def test_tipoff_s_own_check_gives_a_list_of_one(operator: Client) -> None:
    make_service()
    response = mode(operator, {"mode": "paused", "reason": "x"})
    message = "a pause needs an end: when should the service be active again?"
    assert error_of(response, 422) == {
        "detail": f"until: {message}",
        "field": "until",
        "errors": [{"field": "until", "message": message}],
    }
    sent = {"services": ["nope"], "kind": "pin", "replicas": 2, "ends_at": UNTIL, "reason": "r"}
    body = error_of(operator.post("/api/overrides", sent, "application/json"), 422)
    assert body["errors"] == [{"field": "services", "message": "unknown service(s) nope"}]


def test_an_administrators_form_check_names_each_field(client: Client) -> None:
    client.force_login(make_user("root", "admin"))
    sent = {"name": "bad name!", "display_name": "X", "backend": "simulated", "metric_source": "nowhere"}
    body = error_of(client.post("/api/admin/services", sent, "application/json"), 422)
    assert {"name", "metric_source"} <= {e["field"] for e in body["errors"]}
    assert body["detail"].startswith(f"{body['field']}: ")
    assert not Service.objects.exists()


def test_unauthenticated_forbidden_and_missing_answer_the_shape_with_no_field(client: Client) -> None:
    service = make_service()
    assert error_of(client.get("/api/services"), 401)["errors"] == []
    client.force_login(make_user("viewer", "viewer"))
    forbidden = error_of(mode(client, {"mode": "active", "reason": "x"}, service.name), 403)
    assert forbidden == {"detail": "needs the 'operate' capability", "field": "", "errors": []}
    assert error_of(client.get("/api/services/nope"), 404)["detail"] == "Not Found"
    assert error_of(client.get("/api/decisions/999"), 404)["field"] == ""
    assert error_of(client.get("/api/no-such-thing"), 404)["detail"] == "Not Found"


def test_a_method_the_url_does_not_take_is_405_saying_which_it_takes(operator: Client) -> None:
    make_service()
    response = operator.put("/api/services/win-probability/mode", {}, "application/json")
    body = error_of(response, 405)
    assert "takes POST" in body["detail"] and response["Allow"] == "POST"


def test_an_oversize_body_is_413_in_the_shape(operator: Client, settings: Any) -> None:
    response = operator.post(
        "/api/overrides", "{}", "application/json", CONTENT_LENGTH=str(settings.TIPOFF_MAX_REQUEST_BYTES + 1)
    )
    assert "byte limit" in error_of(response, 413)["detail"]


def test_a_conflict_and_a_stale_version_add_to_the_shape(admin: Client) -> None:
    service = make_service()
    url = f"/api/services/{service.name}/policy"
    admin.put(url, {"params": {"tolerance": 0.2}, "reason": "a", "based_on_version": 1}, "application/json")
    stale = error_of(admin.put(url, {"params": {}, "reason": "b", "based_on_version": 1}, "application/json"), 409)
    assert stale["version"] == 2 and stale["errors"] == []


def test_the_pages_stay_html(operator: Client) -> None:
    response = operator.get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("loc", "field"),
    [
        (("body", "payload", "reason"), "reason"),
        (("body", "payload", "params", "tolerance"), "params.tolerance"),
        (("body", "payload", "services", 1), "services.1"),
        (("body", "payload"), "body"),
        (("query", "limit"), "limit"),
        (("path", "decision_id"), "decision_id"),
        (("file", "file"), "file"),
    ],
)
def test_a_validation_errors_place_becomes_a_dotted_field(loc: tuple[str | int, ...], field: str) -> None:
    assert field_name(loc) == field


def _can_fail(parameter: dict[str, Any]) -> bool:
    """A path parameter that is any text never fails validation: its name is never an error's field."""
    constraints = {k: v for k, v in parameter.get("schema", {}).items() if k not in ("title", "description")}
    return parameter["in"] != "path" or constraints != {"type": "string"}


def test_no_endpoint_takes_a_name_from_two_places(client: Client) -> None:
    """An error's field drops where the value came from (body, query, path): that is unambiguous only while no
    endpoint takes the same name from two places (a path's plain text never fails, so it does not count)."""
    schema = client.get("/api/openapi.json").json()
    components = schema["components"]["schemas"]
    checked = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            places: dict[str, set[str]] = {}
            for parameter in operation.get("parameters", []):
                if _can_fail(parameter):
                    places.setdefault(parameter["name"], set()).add(parameter["in"])
            for content in operation.get("requestBody", {}).get("content", {}).values():
                body = content["schema"]
                body = components[body["$ref"].rsplit("/", 1)[1]] if "$ref" in body else body
                for name in body.get("properties", {}):
                    places.setdefault(name, set()).add("body")
            assert all(len(found) == 1 for found in places.values()), (method, path, places)
            checked += 1
    assert checked > 20


def test_the_openapi_schema_describes_the_error_bodies(client: Client) -> None:
    schema = client.get("/api/openapi.json").json()
    assert set(schema["components"]["schemas"]["ErrorOut"]["properties"]) == {"detail", "field", "errors"}
    error_ref = {"$ref": "#/components/schemas/ErrorOut"}
    mode_answers = schema["paths"]["/api/services/{name}/mode"]["post"]["responses"]
    for status in ("401", "403", "404", "422"):
        assert mode_answers[status]["content"]["application/json"]["schema"] == error_ref, status
    listing = schema["paths"]["/api/services"]["get"]["responses"]
    assert {"401", "403"} <= set(listing) and not {"404", "422"} & set(listing)  # no input, no object named
    conflict = schema["paths"]["/api/overrides"]["post"]["responses"]["409"]["content"]["application/json"]
    conflict_schema = schema["components"]["schemas"][conflict["schema"]["$ref"].rsplit("/", 1)[1]]
    assert {"detail", "field", "errors", "existing"} <= set(conflict_schema["properties"])
