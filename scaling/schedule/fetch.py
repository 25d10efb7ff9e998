"""Read a schedule from a file path or an http(s) URL."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from scaling.schedule.parse import ScheduleError, decode_schedule

FETCH_TIMEOUT_S = 30.0
MAX_BYTES = 20 * 1024 * 1024


def read_schedule_source(path_or_url: str) -> tuple[str, str]:
    """The text of a schedule and the name to report it under."""
    parsed = urlparse(path_or_url)
    if parsed.scheme in {"http", "https"}:
        request = urllib.request.Request(path_or_url, headers={"Accept": "application/json, text/csv"})  # noqa: S310
        try:
            # The scheme is checked above: only http(s), never file:// or others.
            with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_S) as resp:  # noqa: S310  # nosec B310
                body = resp.read(MAX_BYTES + 1)
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise ScheduleError(f"{path_or_url}: could not fetch: {exc}") from None
        if len(body) > MAX_BYTES:
            raise ScheduleError(f"{path_or_url}: larger than {MAX_BYTES} bytes")
        return decode_schedule(body, path_or_url), path_or_url
    if parsed.scheme and len(parsed.scheme) > 1:
        raise ScheduleError(f"{path_or_url}: only http(s) URLs and file paths are supported")
    path = Path(path_or_url)
    try:
        body = path.read_bytes()
    except OSError as exc:
        raise ScheduleError(f"{path_or_url}: cannot read: {exc.strerror}") from None
    return decode_schedule(body, path.name), path.name
