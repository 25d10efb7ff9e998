"""Role x URL matrix: every URL pattern in the resolver, every role.

EXPECTATIONS must name every URL (by its name, or its route when unnamed) with
the capability each method needs. A URL missing from the table fails the test,
so nobody adds a page or endpoint without deciding who may use it.

Capabilities: "public" (anyone), "login" (any signed-in user), then the roles'
"view" < "operate" < "approve" < "administer" (dashboard/permissions.py).
Expected: anonymous -> login redirect (pages) or 401 (API and the JSON a page's script fetches); a role without the
capability -> 403; a role with it -> through the gate (no 401/403/login redirect, no 5xx).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from dashboard.permissions import ROLE_CAPABILITIES
from tests.access.conftest import ROLES, World

EXPECTATIONS: dict[str, dict[str, str]] = {
    # accounts
    "login": {"GET": "public"},
    "logout": {"POST": "public"},
    "access:confirm-password": {"GET": "login", "POST": "login"},
    "access:tokens": {"GET": "view", "POST": "view"},
    "access:token-revoke": {"POST": "view"},
    # audit
    "dashboard:audit": {"GET": "view"},
    "dashboard:audit-csv": {"GET": "view"},
    # fleet, services, policies, decisions
    "dashboard:fleet": {"GET": "view"},
    "dashboard:fleet-charts": {"GET": "view"},
    "dashboard:service": {"GET": "view"},
    "dashboard:service-charts": {"GET": "view"},
    "dashboard:service-mode": {"POST": "operate"},
    "dashboard:policy": {"GET": "view"},
    "dashboard:policy-edit": {"GET": "administer", "POST": "administer"},
    "dashboard:policy-restore": {"POST": "administer"},
    "dashboard:decision": {"GET": "view"},
    "dashboard:whatif": {"GET": "view"},
    "dashboard:service-new": {"GET": "administer", "POST": "administer"},
    "dashboard:service-edit": {"GET": "administer", "POST": "administer"},
    "dashboard:service-test-connection": {"POST": "administer"},
    # overrides, rules, calendar
    "dashboard:overrides": {"GET": "view"},
    "dashboard:override-new": {"GET": "operate", "POST": "operate"},
    "dashboard:override-preview": {"POST": "operate"},
    "dashboard:override-cancel": {"POST": "operate"},
    "dashboard:override-extend": {"POST": "operate"},
    "dashboard:override-approve": {"GET": "approve", "POST": "approve"},
    "dashboard:override-reject": {"POST": "approve"},
    "dashboard:rules": {"GET": "view"},
    "dashboard:rule-new": {"GET": "administer", "POST": "administer"},
    "dashboard:rule-edit": {"GET": "administer", "POST": "administer"},
    "dashboard:rule-delete": {"POST": "administer"},
    "dashboard:calendar": {"GET": "view"},
    "dashboard:schedule-import": {"POST": "administer"},
    # API (django-ninja): the OpenAPI description is public; everything else needs a role
    "api:api-root": {"GET": "public"},
    "api:openapi-json": {"GET": "public"},
    "api:openapi-view": {"GET": "public"},
    "api:list_services": {"GET": "view"},
    "api:get_service": {"GET": "view"},
    "api:set_mode": {"POST": "operate"},
    "api:list_decisions": {"GET": "view"},
    "api:list_metrics": {"GET": "view"},
    "api:get_policy": {"GET": "view"},
    "api:put_policy": {"PUT": "administer"},
    "api:list_policy_revisions": {"GET": "view"},
    "api:get_decision": {"GET": "view"},
    "api:list_overrides": {"GET": "view"},
    "api:create_override": {"POST": "operate"},
    "api:get_override": {"GET": "view"},
    "api:preview_override": {"POST": "operate"},
    "api:cancel_override": {"POST": "operate"},
    "api:extend_override": {"POST": "operate"},
    "api:approve_override": {"POST": "approve"},
    "api:reject_override": {"POST": "approve"},
    "api:list_games": {"GET": "view"},
    "api:list_rules": {"GET": "view"},
    "api:create_rule": {"POST": "administer"},
    "api:update_rule": {"PUT": "administer"},
    "api:delete_rule": {"DELETE": "administer"},
    "api:import_schedule": {"POST": "administer"},
    "api:api_service_create": {"POST": "administer"},
    "api:api_service_update": {"PUT": "administer"},
    "api:api_service_test_connection": {"POST": "administer"},
    "api:list_audit_events": {"GET": "view"},
    "api:audit_verification": {"GET": "view"},
}
# Routes another route shadows (Django resolves the first match): reported, and checked to stay
# unreachable so that the entry is removed when the route order is fixed.
KNOWN_UNREACHABLE: dict[str, str] = {}
# Django's admin site is covered as a whole (staff only): see test_the_admin_site_is_for_admins_only.
SKIPPED_NAMESPACES = {"admin"}


# Endpoints a page's script fetches: without a session they answer 401, as the API does, not a redirect.
ANSWERS_JSON = {"dashboard:service-charts", "dashboard:fleet-charts"}


def url_patterns() -> Iterator[tuple[str, str, URLPattern]]:
    """(key, route, pattern) for every URL in the project, namespaces included."""

    def walk(patterns: list[Any], route: str, namespace: str) -> Iterator[tuple[str, str, URLPattern]]:
        for p in patterns:
            if isinstance(p, URLResolver):
                if p.namespace in SKIPPED_NAMESPACES:
                    continue
                ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
                yield from walk(p.url_patterns, route + str(p.pattern), ns)
            elif isinstance(p, URLPattern):
                full_route = route + str(p.pattern)
                yield (f"{namespace}{p.name}" if p.name else full_route), full_route, p

    return walk(get_resolver().url_patterns, "", "")


def _kwargs(key: str, pattern: URLPattern, world: World) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": world.service.name,
        "decision_id": world.decision.pk,
        "version": 1,
        "token_id": world.token.pk,
        "pk": world.override.pk if "override" in key else world.rule.pk,
    }
    converters = getattr(pattern.pattern, "converters", {})
    return {name: values[name] for name in converters}


def expected(capability: str, role: str) -> str:
    if capability == "public":
        return "public"
    if role == "anon":
        return "login"
    if capability == "login":
        return "allow"
    return "allow" if capability in ROLE_CAPABILITIES.get(role, ()) else "deny"


def _request(client: Client, method: str, url: str, is_api: bool) -> Any:
    if is_api and method != "GET":
        return client.generic(method, url, data="{}", content_type="application/json")
    return client.get(url) if method == "GET" else client.generic(method, url, data="")


def _client_for(world: World, role: str) -> Client:
    client = Client()
    if role != "anon":
        client.force_login(world.users[role])
    return client


def test_every_url_pattern_has_an_expectation() -> None:
    keys = {key for key, _, _ in url_patterns()}
    missing = sorted(keys - set(EXPECTATIONS))
    stale = sorted(set(EXPECTATIONS) - keys)
    assert not missing, f"add these URLs to EXPECTATIONS in tests/access/test_matrix.py: {missing}"
    assert not stale, f"these EXPECTATIONS no longer match a URL: {stale}"


def test_each_role_gets_exactly_what_its_role_allows(world: World) -> None:
    failures: list[str] = []
    seen: set[str] = set()
    clients = {role: _client_for(world, role) for role in ROLES}
    for key, route, pattern in url_patterns():
        if key in seen or key not in EXPECTATIONS:
            continue
        seen.add(key)
        is_api = route.startswith("api/")
        answers_401 = is_api or key in ANSWERS_JSON
        url = reverse(key, kwargs=_kwargs(key, pattern, world))
        if key in KNOWN_UNREACHABLE:
            for method in EXPECTATIONS[key]:
                client = Client()
                client.force_login(world.users["admin"])
                if _request(client, method, url, is_api).status_code != 405:
                    failures.append(f"{key} is reachable now: remove it from KNOWN_UNREACHABLE")
            continue
        for method, capability in EXPECTATIONS[key].items():
            for role in ROLES:
                client = clients[role] if key != "logout" else _client_for(world, role)
                response = _request(client, method, url, is_api)
                status = response.status_code
                location = response.get("Location", "")
                outcome = expected(capability, role)
                ok = {
                    "public": status < 500 and status not in (401, 403),
                    "login": (status == 401) if answers_401 else (status == 302 and "/login/" in location),
                    "deny": status == 403,
                    "allow": status < 500 and status not in (401, 403) and "/login/" not in location,
                }[outcome]
                if not ok:
                    failures.append(f"{method} {url} ({key}) as {role}: expected {outcome}, got {status} {location}")
    assert not failures, "\n".join(failures)


def test_the_admin_site_is_for_admins_only(world: World) -> None:
    url = reverse("admin:index")
    for role, allowed in (("viewer", False), ("operator", False), ("approver", False), ("admin", True)):
        client = Client()
        client.force_login(world.users[role])
        response = client.get(url)
        assert (response.status_code == 200) is allowed, role
    assert "/admin/login/" in Client().get(url)["Location"]


def test_roles_are_groups_with_explicit_permissions(db: None) -> None:
    from django.contrib.auth.models import Group

    perms = {
        g.name: set(g.permissions.values_list("codename", flat=True))
        for g in Group.objects.prefetch_related("permissions")
    }
    assert {"view"} <= perms["viewer"] and "operate" not in perms["viewer"] and "view_apitoken" not in perms["viewer"]
    assert {"view", "operate", "add_override"} <= perms["operator"] and "approve" not in perms["operator"]
    assert {"view", "operate", "approve"} <= perms["approver"] and "administer" not in perms["approver"]
    assert {"view", "operate", "approve", "administer", "change_service"} <= perms["admin"]
