"""The Celery app. Every task and its schedule is listed in scaling/tasks.py."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("tipoff")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["scaling"])


@app.on_after_finalize.connect
def _install_beat_schedule(sender: Celery, **_: object) -> None:
    from scaling.tasks import beat_schedule

    sender.conf.beat_schedule = beat_schedule()
