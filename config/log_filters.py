"""Logging filters named in settings.LOGGING."""

from __future__ import annotations

import logging


class DenialWithoutTraceback(logging.Filter):
    """A 403 is an expected answer, audited with its reason (dashboard.middleware): Django logs it with the
    PermissionDenied's traceback, which buried the log under stack traces of nothing going wrong. Keep the
    one-line warning; drop the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) == 403:
            record.exc_info = None
            record.exc_text = None
        return True
