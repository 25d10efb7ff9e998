"""Logins, failures, lockout, logouts and denials are audited; sessions expire; admin changes need a fresh password."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

import pytest
import time_machine
from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from scaling.audit import EventType
from scaling.models import AuditEvent
from tests.factories import make_service, make_user

pytestmark = pytest.mark.django_db
PASSWORD = "pw-for-tests-1"


def _types() -> list[str]:
    return list(AuditEvent.objects.order_by("id").values_list("event_type", flat=True))


def test_a_login_and_a_logout_are_audited_with_the_client_address(client: Client) -> None:
    make_user("operator", "operator")
    response = client.post(reverse("login"), {"username": "operator", "password": PASSWORD})
    assert response.status_code == 302
    client.post(reverse("logout"))
    assert _types() == [EventType.AUTH_LOGIN, EventType.AUTH_LOGOUT]
    login = AuditEvent.objects.get(event_type=EventType.AUTH_LOGIN)
    assert login.actor_label == "operator" and (login.after or {})["ip"] == "127.0.0.1"


def test_failed_logins_are_audited_and_lock_the_account_out(client: Client) -> None:
    make_user("operator", "operator")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": "operator", "password": "wrong"})
    locked = client.post(reverse("login"), {"username": "operator", "password": PASSWORD})
    assert locked.status_code == 429 and b"Too many failed logins" in locked.content
    types = _types()
    assert types.count(EventType.AUTH_LOGIN_FAILED) >= settings.AXES_FAILURE_LIMIT - 1
    assert EventType.AUTH_LOCKED_OUT in types and EventType.AUTH_LOGIN not in types


def test_the_lockout_ends_after_the_cool_off(client: Client) -> None:
    make_user("operator", "operator")
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(settings.AXES_FAILURE_LIMIT):
            client.post(reverse("login"), {"username": "operator", "password": "wrong"})
        assert client.post(reverse("login"), {"username": "operator", "password": PASSWORD}).status_code == 429
        clock.shift(settings.AXES_COOLOFF_TIME + timedelta(seconds=1))
        assert client.post(reverse("login"), {"username": "operator", "password": PASSWORD}).status_code == 302


def test_a_permission_denial_is_audited_with_its_reason(client: Client) -> None:
    service = make_service()
    client.force_login(make_user("viewer", "viewer"))
    url = reverse("dashboard:service-mode", args=[service.name])
    assert client.post(url, {"mode": "paused", "reason": "x"}).status_code == 403
    denied = AuditEvent.objects.get(event_type=EventType.AUTH_DENIED)
    assert denied.actor_label == "viewer" and "operate" in denied.reason and (denied.after or {})["path"] == url


def test_the_session_expires_after_the_configured_age(client: Client) -> None:
    assert settings.SESSION_COOKIE_AGE == 8 * 3600
    make_user("viewer", "viewer")
    with time_machine.travel(timezone.now(), tick=False) as clock:
        client.post(reverse("login"), {"username": "viewer", "password": PASSWORD})
        assert client.get(reverse("dashboard:fleet")).status_code == 200
        clock.shift(timedelta(seconds=settings.SESSION_COOKIE_AGE + 1))
        assert client.get(reverse("dashboard:fleet")).status_code == 302


def _expired(client: Client) -> Client:
    """A client whose session has just passed SESSION_COOKIE_AGE: polling does not extend it."""
    make_user("viewer", "viewer")
    with time_machine.travel(timezone.now() - timedelta(seconds=settings.SESSION_COOKIE_AGE + 1), tick=False):
        client.post(reverse("login"), {"username": "viewer", "password": PASSWORD})
        assert client.get(reverse("dashboard:fleet"), headers={"HX-Request": "true"}).status_code == 200
    return client


def test_an_htmx_poll_after_the_session_expired_sends_the_browser_to_log_in_and_back(client: Client) -> None:
    service = make_service()
    page = f"/services/{service.name}/?range=1h"
    response = _expired(client).get(
        reverse("dashboard:service", args=[service.name]),
        headers={"HX-Request": "true", "HX-Current-URL": f"http://testserver{page}"},
    )
    # A redirect htmx would follow, swapping the login page into the timeline; this it turns into a navigation.
    assert response.status_code == 200 and response.content == b""
    assert response["HX-Redirect"] == "/login/?next=%2Fservices%2Fwin-probability%2F%3Frange%3D1h"


def test_an_htmx_poll_from_another_site_is_sent_back_to_the_polled_page(client: Client) -> None:
    response = _expired(client).get(
        reverse("dashboard:fleet"), headers={"HX-Request": "true", "HX-Current-URL": "https://evil.example/x"}
    )
    assert response["HX-Redirect"] == "/login/?next=%2F"


def test_the_chart_data_after_the_session_expired_is_a_401_the_page_can_read(client: Client) -> None:
    service = make_service()
    response = _expired(client).get(reverse("dashboard:service-charts", args=[service.name]))
    assert response.status_code == 401
    assert response.json() == {"error": "not logged in: the session has ended", "login_url": "/login/"}


def test_a_page_after_the_session_expired_is_still_a_redirect_to_log_in(client: Client) -> None:
    response = _expired(client).get(reverse("dashboard:calendar") + "?days=3")
    assert response.status_code == 302 and response["Location"] == "/login/?next=/calendar/%3Fdays%3D3"


@override_settings(REAUTH_MAX_AGE_SECONDS=600)
def test_an_admin_change_after_ten_minutes_asks_for_the_password_again(client: Client) -> None:
    service = make_service()
    make_user("admin", "admin")
    edit = reverse("dashboard:policy-edit", args=[service.name])
    with time_machine.travel(timezone.now(), tick=False) as clock:
        client.post(reverse("login"), {"username": "admin", "password": PASSWORD})
        clock.shift(timedelta(minutes=11))
        response = client.post(edit, {}, headers={"Referer": f"http://testserver{edit}"})
        assert response.status_code == 302 and reverse("access:confirm-password") in response["Location"]
        confirm = client.get(response["Location"])
        assert confirm.status_code == 200 and b"Confirm your password" in confirm.content
        wrong = client.post(reverse("access:confirm-password"), {"password": "nope", "next": edit})
        assert wrong.status_code == 400
        right = client.post(reverse("access:confirm-password"), {"password": PASSWORD, "next": edit})
        assert right.status_code == 302 and right["Location"] == edit
        assert client.post(edit, {}).status_code != 302  # through to the form (validation), no more redirect
    assert EventType.AUTH_LOGIN_FAILED in _types()


def test_the_confirm_page_never_redirects_off_site(client: Client) -> None:
    make_user("admin", "admin")
    client.post(reverse("login"), {"username": "admin", "password": PASSWORD})
    response = client.post(
        reverse("access:confirm-password"), {"password": PASSWORD, "next": "https://evil.example/steal"}
    )
    assert response.status_code == 302 and response["Location"] == "/"


@override_settings(REAUTH_MAX_AGE_SECONDS=600)
def test_an_admin_change_through_the_api_with_a_stale_session_asks_for_the_password_too(client: Client) -> None:
    import json

    from scaling.audit import Actor
    from scaling.tokens import token_create

    service = make_service()
    admin = make_user("admin", "admin")
    secret = token_create(user=admin, name="ci", days=3, actor=Actor.for_user(admin)).secret
    url = f"/api/services/{service.name}/policy"
    body = json.dumps({"params": {"tolerance": 0.2}, "reason": "walk-up", "based_on_version": 1})
    with time_machine.travel(timezone.now(), tick=False) as clock:
        client.post(reverse("login"), {"username": "admin", "password": PASSWORD})
        clock.shift(timedelta(minutes=11))

        refused = client.put(url, data=body, content_type="application/json")
        assert refused.status_code == 403
        assert refused.json()["confirm_password_url"] == reverse("access:confirm-password")
        service.refresh_from_db()
        assert service.policy_version == 1
        assert client.get(url).status_code == 200  # reading needs no password
        # A token was issued after its password was typed; it has none to re-type.
        bearer = Client().put(
            url, data=body, content_type="application/json", headers={"Authorization": f"Bearer {secret}"}
        )
        assert bearer.status_code == 200

        client.post(reverse("access:confirm-password"), {"password": PASSWORD, "next": "/"})
        body = json.dumps({"params": {"tolerance": 0.3}, "reason": "confirmed", "based_on_version": 2})
        assert client.put(url, data=body, content_type="application/json").status_code == 200
    denied = AuditEvent.objects.get(event_type=EventType.AUTH_DENIED)
    assert denied.reason == "API: the password was not confirmed recently"


@override_settings(REAUTH_MAX_AGE_SECONDS=600)
def test_the_django_admin_asks_for_the_password_again_after_ten_minutes_as_tipoffs_pages_do(client: Client) -> None:
    # It did not: a session left open (or taken) could add a superuser there while Tipoff's own pages asked.
    from django.contrib.auth.models import User

    make_user("admin", "admin")
    add = reverse("admin:auth_user_add")
    new_user = {"username": "mallory", "password1": "a-long-pass-phrase-9", "password2": "a-long-pass-phrase-9"}
    new_user |= {"usable_password": "true"}
    with time_machine.travel(timezone.now(), tick=False) as clock:
        client.post(reverse("login"), {"username": "admin", "password": PASSWORD})
        clock.shift(timedelta(minutes=11))

        referer = f"http://testserver{add}"
        refused = client.post(add, new_user, headers={"Referer": referer})
        assert refused.status_code == 302
        # Back to the page the change was made from (its Referer), as Tipoff's own pages send one.
        assert refused["Location"] == f"{reverse('access:confirm-password')}?{urlencode({'next': referer})}"
        assert not User.objects.filter(username="mallory").exists()
        # Reading too: the admin lists every account. Back to the page once the password is typed.
        read = client.get(reverse("admin:auth_user_changelist"))
        assert read.status_code == 302 and read["Location"].startswith(reverse("access:confirm-password"))
        assert "next=%2Fadmin%2Fauth%2Fuser%2F" in read["Location"]

        client.post(reverse("access:confirm-password"), {"password": PASSWORD, "next": add})
        assert client.get(reverse("admin:auth_user_changelist")).status_code == 200
        made = client.post(add, new_user)
        assert made.status_code == 302 and User.objects.filter(username="mallory").exists()

        # Leaving needs no password.
        clock.shift(timedelta(minutes=11))
        left = client.post(reverse("admin:logout"))
        assert (left.status_code, left["Location"]) == (302, reverse("login"))
        assert "_auth_user_id" not in client.session
