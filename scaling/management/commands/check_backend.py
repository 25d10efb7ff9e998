from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from scaling.audit import Actor
from scaling.backends.probe import probe_connection
from scaling.models import Service

MARKS = {"ok": "ok   ", "warn": "WARN ", "error": "ERROR"}


class Command(BaseCommand):
    help = (
        "Test a service's backend connection with read-only calls (the dashboard's Test connection button): "
        "observed counts and metrics, or the missing permission / unknown resource."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("service", help="the service's name (slug)")

    def handle(self, *args: Any, **options: Any) -> None:
        service = Service.objects.filter(name=options["service"]).first()
        if service is None:
            known = ", ".join(Service.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"no service named {options['service']!r} (known: {known})")
        report = probe_connection(service, timezone.now(), actor=Actor.system("check_backend"))
        self.stdout.write(f"{service.name}: backend {service.backend}, metrics {service.metric_source}")
        for line in report.lines:
            self.stdout.write(f"  {MARKS[line.level]} {line.text}")
        if not report.ok:
            raise CommandError("the connection test failed (see above)")
