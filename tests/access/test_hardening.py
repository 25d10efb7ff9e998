"""Hardened defaults: CSP without inline script or eval, htmx told so, deploy check clean, oversize bodies refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from tests.factories import make_user

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def test_every_page_carries_a_strict_content_security_policy(client: Client) -> None:
    client.force_login(make_user("viewer", "viewer"))
    response = client.get(reverse("dashboard:fleet"))
    policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";") if part.strip())
    assert policy["script-src"] == "'self'" and policy["default-src"] == "'self'"
    assert "unsafe-eval" not in response["Content-Security-Policy"]
    assert "unsafe-inline" not in policy["script-src"] and policy["frame-ancestors"] == "'none'"
    body = response.content.decode()
    assert '"allowEval":false' in body and '"includeIndicatorStyles":false' in body


def test_no_template_has_inline_script_or_event_handlers() -> None:
    import re

    offenders = []
    for path in (ROOT / "templates").rglob("*.html"):
        text = path.read_text()
        for match in re.finditer(r"<script\b([^>]*)>", text):
            attrs = match.group(1)
            if "src=" not in attrs and "application/json" not in attrs:
                offenders.append(f"{path.relative_to(ROOT)}: inline <script{attrs}>")
        if re.search(r"\son[a-z]+\s*=\s*[\"']", text) or "hx-on" in text:
            offenders.append(f"{path.relative_to(ROOT)}: inline event handler")
    assert not offenders, "\n".join(offenders)


def test_an_oversize_request_is_refused_with_413(client: Client) -> None:
    client.force_login(make_user("operator", "operator"))
    too_big = settings.TIPOFF_MAX_REQUEST_BYTES + 1
    response = client.generic("POST", "/api/overrides", data=b"x" * too_big, content_type="application/json")
    assert response.status_code == 413 and b"limit" in response.content


def test_a_form_body_over_the_memory_limit_is_refused(client: Client) -> None:
    client.force_login(make_user("operator", "operator"))
    data = "reason=" + "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)
    response = client.generic(
        "POST", reverse("dashboard:override-new"), data=data, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400


def test_check_deploy_is_clean_with_production_settings() -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "SECRET_KEY": "x" * 30 + "-deploy-check-only-0123456789-ABCDEFGHIJK",
        "TIPOFF_HTTPS": "true",
        "DEBUG": "false",
        "TIPOFF_VAR_DIR": os.environ.get("TIPOFF_VAR_DIR", str(ROOT / "var")),
        "ALLOWED_HOSTS": "tipoff.example.com",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_secret_key_is_required_outside_debug(tmp_path: Path) -> None:
    # A var directory of its own: one where `make run` once kept its key would hold one.
    env = {"PATH": os.environ.get("PATH", ""), "DEBUG": "false", "TIPOFF_VAR_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def test_the_api_docs_load_swagger_from_this_server_not_a_cdn(client: Client) -> None:
    body = client.get("/api/docs").content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in body and "cdn." not in body


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/api/overrides",
            {"services": ["win-probability"], "kind": "floor", "replicas": 2, "reason": "pre\x00game"},
            "reason",
        ),
        (
            "/api/rules",
            {"name": "tv", "services": ["win-probability"], "match": {"networks": ["ES\x00PN"]}, "reason": "TV"},
            "match.networks.0",
        ),
        (
            "/api/services/win-probability/policy",
            {"params": {"tolerance\x00": 0.2}, "reason": "typo", "based_on_version": 1},
            "params",
        ),
    ],
)
def test_a_nul_character_in_an_api_body_is_a_422_naming_the_field(path: str, body: dict, field: str) -> None:
    import json

    from scaling.models import AuditEvent, GameDayRule, Override
    from tests.factories import make_service

    make_service()
    client = Client(raise_request_exception=False)
    client.force_login(make_user("root", "admin"))
    required: dict[str, dict[str, Any]] = {
        "/api/overrides": {"ends_at": "2030-01-01T00:00:00Z"},
        "/api/rules": {"floor_replicas": 3},
    }
    body = body | required.get(path, {})
    method = client.put if path.endswith("/policy") else client.post

    response = method(path, data=json.dumps(body), content_type="application/json")

    assert response.status_code == 422, response.content
    assert response.json()["field"] == field and response.json()["errors"][0]["field"] == field
    assert not Override.objects.exists() and not GameDayRule.objects.exists() and not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("/api/audit/events?q=a%00b", "'q'"),
        ("/api/audit/events?actor=a%00b", "'actor'"),
        ("/api/overrides?service=a%00b", "'service'"),
        ("/api/services/a%00b", "the path"),
        ("/api/rules/1?reason=a%00b", "'reason'"),
    ],
)
def test_a_nul_character_in_an_api_url_is_a_400_naming_where(url: str, named: str) -> None:
    client = Client(raise_request_exception=False)
    client.force_login(make_user("root", "admin"))
    response = client.delete(url) if url.startswith("/api/rules") else client.get(url)
    assert response.status_code == 400 and named in response.json()["detail"]
    assert set(response.json()) == {"detail", "field", "errors"}


@pytest.mark.django_db
def test_a_denial_logs_one_line_not_a_traceback(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    # A 403 is an expected answer, audited with its reason; its traceback buried the log of `make run`.
    make_user("vic", "viewer")
    client.login(username="vic", password="pw-for-tests-1")
    with caplog.at_level("WARNING", logger="django.request"):
        assert client.get(reverse("dashboard:override-new")).status_code == 403
    (record,) = [r for r in caplog.records if r.name == "django.request"]
    assert record.getMessage().startswith("Forbidden") and record.exc_info is None and not record.exc_text
