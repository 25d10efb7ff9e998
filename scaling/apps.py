from __future__ import annotations

from django.apps import AppConfig


class ScalingConfig(AppConfig):
    name = "scaling"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Here rather than in settings.py: what the retention must cover is read from the code that reads
        # history back (the engine, the charts, what-if), which needs the app loaded.
        from scaling import checks  # noqa: F401 - registers the system checks
        from scaling.retention import check_retention_settings

        check_retention_settings()
