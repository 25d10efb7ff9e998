"""Every mutating URL refuses a request without a CSRF token (403), pages and API (session) alike."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from dashboard.forms import local_input
from tests.access.conftest import World
from tests.access.test_matrix import EXPECTATIONS, KNOWN_UNREACHABLE, _kwargs, url_patterns

MUTATING = ("POST", "PUT", "PATCH", "DELETE")


def test_every_mutating_url_without_a_csrf_token_is_403(world: World) -> None:
    admin = Client(enforce_csrf_checks=True)
    admin.force_login(world.users["admin"])
    anonymous = Client(enforce_csrf_checks=True)
    failures, checked = [], 0
    seen: set[str] = set()
    for key, route, pattern in url_patterns():
        if key in seen or key in KNOWN_UNREACHABLE:
            continue
        seen.add(key)
        url = reverse(key, kwargs=_kwargs(key, pattern, world))
        for method in (m for m in EXPECTATIONS.get(key, {}) if m in MUTATING):
            client = anonymous if EXPECTATIONS[key][method] == "public" else admin
            if route.startswith("api/"):
                response = client.generic(method, url, data="{}", content_type="application/json")
            else:
                response = client.generic(method, url, data="a=1", content_type="application/x-www-form-urlencoded")
            checked += 1
            if response.status_code != 403 or b"CSRF" not in response.content:
                failures.append(f"{method} {url} ({key}): {response.status_code}")
    assert checked >= 20
    assert not failures, "\n".join(failures)


def test_an_htmx_post_with_the_page_header_token_passes_csrf(world: World) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.users["operator"])
    page = client.get(reverse("dashboard:fleet"))
    assert b'hx-headers=\'{"X-CSRFToken": "' in page.content
    token = page.content.decode().split('"X-CSRFToken": "', 1)[1].split('"', 1)[0]
    url = reverse("dashboard:service-mode", args=[world.service.name])
    until = local_input(timezone.now() + timedelta(hours=1))
    response = client.post(
        url,
        {"mode": "paused", "reason": "csrf test", "until_local": until},
        headers={"HX-Request": "true", "X-CSRFToken": token},
    )
    assert response.status_code == 204


@pytest.mark.parametrize("path", ["/login/"])
def test_the_login_form_needs_its_csrf_token(db: None, path: str) -> None:
    response = Client(enforce_csrf_checks=True).post(path, {"username": "x", "password": "y"})
    assert response.status_code == 403


def test_a_csrf_failure_of_a_signed_in_user_is_audited_with_its_reason(world: World) -> None:
    from scaling.audit import EventType
    from scaling.models import AuditEvent

    client = Client(enforce_csrf_checks=True)
    client.force_login(world.users["operator"])
    url = reverse("dashboard:service-mode", args=[world.service.name])
    assert client.post(url, {"mode": "paused", "reason": "x"}).status_code == 403
    denied = AuditEvent.objects.get(event_type=EventType.AUTH_DENIED)
    assert denied.actor_label == "u-operator" and denied.reason.startswith("CSRF check failed")
