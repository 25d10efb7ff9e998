"""Service.target_key: one service per AWS resource, enforced by the database."""

import os
from typing import Any

from django.db import migrations, models


def _key(backend: str, config: dict[str, Any]) -> str | None:
    # As scaling.service_config.target_key when this migration was written (a migration keeps its own copy).
    def name(value: Any) -> str:
        text = str(value or "").strip()
        return text.rsplit("/", 1)[-1] if text.startswith("arn:") else text

    if backend == "sagemaker":
        resource = f"endpoint/{name(config.get('endpoint_name')).lower()}/variant/"
        resource += str(config.get("variant_name") or "AllTraffic").strip().lower()
    elif backend == "ecs":
        resource = f"service/{name(config.get('cluster'))}/{name(config.get('service'))}"
    else:
        return None
    region = str(config.get("region") or "").strip()
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""
    endpoint_url = str(config.get("endpoint_url") or "").strip().rstrip("/").lower()
    return f"{backend}|{region}|{endpoint_url}|{resource}"


def fill_target_keys(apps: Any, schema_editor: Any) -> None:
    """Key every AWS service; a second service on a target already keyed keeps none (the service form names
    the clash at its next edit), so the migration never fails on data it cannot fix."""
    service_model = apps.get_model("scaling", "Service")
    taken: set[str] = set()
    for service in service_model.objects.order_by("pk"):
        key = _key(service.backend, service.backend_config or {})
        if key is None or key in taken:
            continue
        taken.add(key)
        service_model.objects.filter(pk=service.pk).update(target_key=key)


class Migration(migrations.Migration):
    dependencies = [
        ("scaling", "0012_metric_rollup"),
    ]

    operations = [
        migrations.AddField(
            model_name="service",
            name="target_key",
            field=models.CharField(blank=True, editable=False, max_length=600, null=True, unique=True),
        ),
        migrations.RunPython(fill_target_keys, migrations.RunPython.noop),
    ]
