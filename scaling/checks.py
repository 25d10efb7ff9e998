"""System checks (`manage.py check`, and every manage.py command that runs them, `migrate` among them)."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.db import DatabaseError


@checks.register(checks.Tags.database)
def stored_policies_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """A stored policy the engine refuses: one saved before its parameters' ranges were narrowed. Its service's
    ticks hold the count provisioned (reason POLICY_INVALID: the engine will not run parameters outside their
    ranges), never scaling it in or out, until a valid policy is saved."""
    from scaling.models import Service
    from scaling.policy import PolicyParams

    problems: list[checks.CheckMessage] = []
    try:
        stored = list(Service.objects.order_by("name").values_list("name", "policy"))
    except DatabaseError:  # not migrated yet: nothing stored to check
        return problems
    for name, policy in stored:
        try:
            PolicyParams.from_dict(policy)
        except ValueError as exc:
            problems.append(
                checks.Warning(
                    f"service {name!r}: its stored policy is refused by the engine ({exc}), so its ticks hold its "
                    "count as it is (POLICY_INVALID) and never scale it",
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
    from scaling.models import Service

    problems: list[checks.CheckMessage] = []
    try:
        stored = list(Service.objects.order_by("name").values_list("name", "backend_config"))
    except DatabaseError:  # not migrated yet: nothing stored to check
        return problems
    for name, config in stored:
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
