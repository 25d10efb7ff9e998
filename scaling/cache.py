"""How values go into the "shared" cache (Redis): as JSON, never as pickle.

Django's RedisCache pickles by default, and unpickling runs whatever the bytes say: anyone who could write to
Redis could then run code in the web and worker processes. Celery's messages are JSON for the same reason
(CELERY_ACCEPT_CONTENT). What Tipoff shares there is plain data (a learned demand model's `Forecaster.state()`),
so JSON loses nothing that its reader does not rebuild (`Forecaster.from_state`: tuples, integer keys).
"""

from __future__ import annotations

import json
from typing import Any


class JSONSerializer:
    """The `serializer` of settings.CACHES["shared"]: bytes of JSON in, plain values out."""

    def dumps(self, obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()

    def loads(self, data: bytes) -> Any:
        return json.loads(data)
