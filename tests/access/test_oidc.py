"""Single sign-on against a stub OpenID Connect provider on 127.0.0.1: the provider's groups claim sets the
role, someone without a Tipoff role is refused, and the sign-in is audited."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings

from scaling.audit import EventType
from scaling.models import AuditEvent

pytestmark = pytest.mark.django_db
CLIENT_ID, CLIENT_SECRET = "tipoff", "stub-provider-shared-secret-0123456789"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _id_token(claims: dict[str, Any]) -> str:
    signing_input = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + _b64(json.dumps(claims).encode())
    signature = hmac.new(CLIENT_SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64(signature)


class StubProvider:
    """Answers the token and userinfo endpoints for whoever `user` says is signing in."""

    def __init__(self) -> None:
        self.user: dict[str, Any] = {}
        self.nonce = ""
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def _json(self, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # the token endpoint
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now = int(time.time())
                claims = {"iss": "stub", "aud": CLIENT_ID, "iat": now, "exp": now + 300, "nonce": provider.nonce}
                self._json(
                    {"id_token": _id_token(claims | provider.user), "access_token": "at", "token_type": "Bearer"}
                )

            def do_GET(self) -> None:  # the userinfo endpoint
                self._json(provider.user)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> StubProvider:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def provider() -> Iterator[StubProvider]:
    with StubProvider() as stub:
        backends = [
            "dashboard.auth_backends.LoginThrottleBackend",
            "django.contrib.auth.backends.ModelBackend",
            "dashboard.oidc.TipoffOIDCBackend",
        ]
        with override_settings(
            ROOT_URLCONF="tests.access.oidc_urls",
            AUTHENTICATION_BACKENDS=backends,
            OIDC_ENABLED=True,
            OIDC_RP_CLIENT_ID=CLIENT_ID,
            OIDC_RP_CLIENT_SECRET=CLIENT_SECRET,
            OIDC_RP_SIGN_ALGO="HS256",
            OIDC_OP_AUTHORIZATION_ENDPOINT=f"{stub.url}/authorize",
            OIDC_OP_TOKEN_ENDPOINT=f"{stub.url}/token",
            OIDC_OP_USER_ENDPOINT=f"{stub.url}/userinfo",
        ):
            yield stub


def _sign_in(client: Client, provider: StubProvider, user: dict[str, Any]) -> Any:
    provider.user = user
    start = client.get("/oidc/authenticate/")
    assert start.status_code == 302 and start["Location"].startswith(f"{provider.url}/authorize")
    query = parse_qs(urlparse(start["Location"]).query)
    provider.nonce = query["nonce"][0]
    return client.get("/oidc/callback/", {"code": "the-code", "state": query["state"][0]}, REMOTE_ADDR="127.0.0.1")


def test_a_provider_group_becomes_the_tipoff_role_and_the_sign_in_is_audited(provider: StubProvider) -> None:
    client = Client()
    claims = {"sub": "u-1", "email": "jo@example.com", "preferred_username": "jo", "groups": ["staff", "operator"]}
    response = _sign_in(client, provider, claims)
    assert response.status_code == 302 and "/login/" not in response["Location"]
    user = User.objects.get(username="jo")
    assert sorted(user.groups.values_list("name", flat=True)) == ["operator"] and not user.has_usable_password()
    assert client.get("/").status_code == 200
    login = AuditEvent.objects.get(event_type=EventType.AUTH_LOGIN)
    assert login.actor_label == "jo"

    # The provider is the source of truth: a later sign-in with another group changes the role.
    again = Client()
    _sign_in(again, provider, claims | {"groups": ["viewer"]})
    assert list(user.groups.values_list("name", flat=True)) == ["viewer"]

    # Each role the provider set is in the audit log, by single sign-on.
    changes = AuditEvent.objects.filter(event_type=EventType.USER_ROLES_CHANGED, object_id=str(user.pk)).order_by("id")
    assert [(e.actor_label, (e.before or {})["groups"], (e.after or {})["groups"]) for e in changes] == [
        ("system:sso", [], ["operator"]),
        ("system:sso", ["operator"], []),
        ("system:sso", [], ["viewer"]),
    ]
    created = AuditEvent.objects.get(event_type=EventType.USER_CREATED)
    assert (created.actor_label, (created.after or {})["username"]) == ("system:sso", "jo")


def test_someone_without_a_tipoff_role_is_refused(provider: StubProvider) -> None:
    client = Client()
    response = _sign_in(client, provider, {"sub": "u-2", "email": "x@example.com", "groups": ["finance"]})
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert not User.objects.filter(email="x@example.com").exists()
    assert client.get("/").status_code == 302
    assert AuditEvent.objects.filter(event_type=EventType.AUTH_LOGIN_FAILED).exists()


def test_the_provider_cannot_sign_anyone_in_as_a_local_account(provider: StubProvider) -> None:
    local = User.objects.create_user(username="admin", password="pw-for-tests-1", is_superuser=True)
    client = Client()
    claims = {"sub": "evil", "email": "e@example.com", "preferred_username": "admin", "groups": ["admin"]}
    response = _sign_in(client, provider, claims)
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert client.get("/").status_code == 302
    assert local.check_password("pw-for-tests-1") and not local.groups.exists()
