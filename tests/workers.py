"""A real Celery worker, in this process's threads, consuming from the test broker (the suite's Redis)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from celery.contrib.testing.worker import start_worker

from config.celery import app


@contextmanager
def real_worker(queue: str, *, concurrency: int = 1) -> Iterator[None]:
    """A worker on one queue: "celery" (the control worker of the Procfile) or "whatif" (the what-if worker's),
    so a task routed to the other queue is not run by it."""
    app.conf.task_always_eager = False
    with start_worker(
        app, pool="threads", concurrency=concurrency, perform_ping_check=False, loglevel="WARNING", queues=[queue]
    ):
        yield
