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
