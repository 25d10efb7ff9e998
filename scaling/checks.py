"""System checks (`manage.py check`, and every manage.py command that runs them, `migrate` among them)."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.db import DatabaseError


def _stored(field: str) -> list[tuple[str, Any]]:
    """(name, field) of every stored service, by name; none before the tables exist."""
    from scaling.models import Service

    try:
        return list(Service.objects.order_by("name").values_list("name", field))
    except DatabaseError:  # not migrated yet: nothing stored to check
        return []


@checks.register(checks.Tags.database)
def stored_policies_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """A stored policy the engine refuses: one saved before its parameters' ranges were narrowed. Its service's
    ticks hold the count provisioned (reason POLICY_INVALID: the engine will not run parameters outside their
    ranges; overrides and the bounds still apply) until a valid policy is saved."""
    from scaling.policy import PolicyParams

    problems: list[checks.CheckMessage] = []
    for name, policy in _stored("policy"):
        try:
            PolicyParams.from_dict(policy)
        except ValueError as exc:
            problems.append(
                checks.Warning(
                    f"service {name!r}: its stored policy is refused by the engine ({exc}), so its ticks hold its "
                    "count (POLICY_INVALID), moved only by its overrides and bounds",
                    hint=f"save a valid policy on /services/{name}/policy/ (the form shows each allowed range)",
                    obj=name,
                    id="tipoff.W001",
                )
            )
    return problems


@checks.register(checks.Tags.database)
def stored_token_variables_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """A stored bearer_token_env Tipoff will not send: one saved before only TIPOFF_PROM_TOKEN_... names were
    accepted (SECRET_KEY, AWS_SECRET_ACCESS_KEY). Its service's Prometheus fetches fail on it until it is changed."""
    from scaling.backends.prometheus import BEARER_ENV_PREFIX, token_env_error

    problems: list[checks.CheckMessage] = []
    for name, config in _stored("backend_config"):
        token_env = (config or {}).get("bearer_token_env")
        if token_env in (None, "") or not token_env_error(token_env):
            continue
        problems.append(
            checks.Warning(
                f"service {name!r}: its bearer_token_env names {token_env!r}, a variable Tipoff does not send "
                f"(only names beginning {BEARER_ENV_PREFIX}), so its Prometheus fetches fail",
                hint=f"put the token in a variable named {BEARER_ENV_PREFIX}<NAME> and set bearer_token_env to it "
                f'(PUT /api/admin/services/{name}), or clear it ({{"clear": ["bearer_token_env"], "reason": ...}})',
                obj=name,
                id="tipoff.W002",
            )
        )
    return problems


@checks.register(checks.Tags.database)
def stored_url_credentials_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """A stored Prometheus or endpoint URL holding a user and password: saved before they were refused. The URL
    is shown wherever the service is (its page, the audit log's snapshots), and the Prometheus fetch refuses it.
    The message names the field, never the URL."""
    from scaling.backends.base import has_userinfo

    problems: list[checks.CheckMessage] = []
    for name, config in _stored("backend_config"):
        for field in ("prometheus_url", "endpoint_url"):
            url = (config or {}).get(field)
            if not isinstance(url, str) or not has_userinfo(url):
                continue
            problems.append(
                checks.Warning(
                    f"service {name!r}: its {field} holds a user and password (user:password@), which its edit "
                    "form and the audit log's snapshots of it show",
                    hint=f"remove them on /services/{name}/edit/ (a Prometheus token goes in a TIPOFF_PROM_TOKEN_... "
                    "variable named by bearer_token_env), and change the password they gave away",
                    obj=name,
                    id="tipoff.W003",
                )
            )
    return problems


@checks.register(checks.Tags.database)
def stored_regions_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """A SageMaker or ECS service stored without a region (saved before regions were stored, and migrated where
    no AWS_REGION was set): each process scales it in the region of its own environment, which the web process
    and the workers need not share."""
    from scaling.models import Service

    try:
        stored = list(
            Service.objects.filter(backend__in=(Service.Backend.SAGEMAKER, Service.Backend.ECS))
            .order_by("name")
            .values_list("name", "backend_config")
        )
    except DatabaseError:  # not migrated yet: nothing stored to check
        return []
    return [
        checks.Warning(
            f"service {name!r}: no region stored, so each Tipoff process uses its own AWS_REGION for it",
            hint=f"name its region on /services/{name}/edit/ (or save it there where AWS_REGION is set)",
            obj=name,
            id="tipoff.W004",
        )
        for name, config in stored
        if not str((config or {}).get("region") or "").strip()
    ]
