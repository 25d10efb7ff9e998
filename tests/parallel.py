"""One Redis database per pytest-xdist worker, so workers running the suite side by side do not share a broker,
locks or cache.

Loaded with ``-p tests.parallel`` (pyproject's addopts) so that it runs before pytest-django reads the settings:
REDIS_URL has to be rewritten in the environment first, also for the Celery beat and manage.py subprocesses the
tests start. PostgreSQL needs nothing here: pytest-django already gives each worker its own test database
(``test_tipoff_gw0``, ``test_tipoff_gw1``).
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

REDIS_DATABASES = 16  # Redis's default `databases`


def worker_redis_url(url: str, worker: str) -> str:
    """The base URL's database plus the worker's number: gw0 keeps it, gw1 takes the next one, and so on."""
    index = int(worker.removeprefix("gw"))
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(f"REDIS_URL={url!r}: parallel tests need a redis:// or rediss:// URL with a database number")
    base = int(parts.path.strip("/") or 0)
    database = base + index
    if database >= REDIS_DATABASES:
        raise ValueError(
            f"REDIS_URL={url!r}: worker {worker} would need Redis database {database}; "
            f"use a lower database number or fewer workers"
        )
    return urlunsplit(parts._replace(path=f"/{database}"))


_worker = os.environ.get("PYTEST_XDIST_WORKER")
if _worker and os.environ.get("REDIS_URL"):
    os.environ["REDIS_URL"] = worker_redis_url(os.environ["REDIS_URL"], _worker)
