"""A SageMaker or ECS service stores its region, and is keyed from its stored settings alone.

A service saved without a region took each process's AWS_REGION: the web process keyed it (target_key) in its
region while a worker with another scaled the endpoint of its own. The service form now stores the region at
save; this stores, for the services saved before, the region of the process that migrates (AWS_REGION, else
AWS_DEFAULT_REGION, as they ran under), and keys every AWS service again. A service it finds no region for
keeps none (the system check tipoff.W004 names it); a second service on a target already keyed keeps no key,
as in 0013 (the service form names the clash at its next edit), so the migration never fails on data it
cannot fix. No audit event: a migration runs outside the service functions that write them.
"""

import os
from typing import Any

from django.db import migrations

AWS_BACKENDS = ("sagemaker", "ecs")


def _key(backend: str, config: dict[str, Any]) -> str | None:
    # As scaling.service_config.target_key when this migration was written (a migration keeps its own copy):
    # the stored region alone, never the environment's.
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
    endpoint_url = str(config.get("endpoint_url") or "").strip().rstrip("/").lower()
    return f"{backend}|{region}|{endpoint_url}|{resource}"


def store_regions(apps: Any, schema_editor: Any) -> None:
    service_model = apps.get_model("scaling", "Service")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""
    services = service_model.objects.filter(backend__in=AWS_BACKENDS).order_by("pk")
    rows = list(services)
    services.update(target_key=None)  # keyed again below: no new key meets another row's old one meanwhile
    taken: set[str] = set()
    for service in rows:
        config = dict(service.backend_config or {})
        if region and not str(config.get("region") or "").strip():
            config["region"] = region
        key = _key(service.backend, config)
        if key is not None and key in taken:
            key = None
        elif key is not None:
            taken.add(key)
        service_model.objects.filter(pk=service.pk).update(backend_config=config, target_key=key)


class Migration(migrations.Migration):
    dependencies = [
        ("scaling", "0013_service_target_key"),
    ]

    operations = [
        migrations.RunPython(store_regions, migrations.RunPython.noop),
    ]
