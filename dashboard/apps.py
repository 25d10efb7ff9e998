from __future__ import annotations

from typing import Any

from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


def _ensure_roles(sender: Any, **kwargs: Any) -> None:
    from dashboard.permissions import ensure_roles

    ensure_roles()


class DashboardConfig(AppConfig):
    name = "dashboard"

    def ready(self) -> None:
        from dashboard import signals

        signals.connect()
        # After every migrate and every test-database flush: the roles always hold their permissions.
        # (sent per app with models; the permissions live on scaling's Capability model)
        post_migrate.connect(_ensure_roles, sender=apps.get_app_config("scaling"), dispatch_uid="tipoff-ensure-roles")
