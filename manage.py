#!/usr/bin/env python
from __future__ import annotations

import os
import sys
from pathlib import Path


def _sqlite_file_to_be_created() -> Path | None:
    """The SQLite database file when it does not exist yet: connecting would create it empty."""
    from django.conf import settings

    try:
        database = settings.DATABASES["default"]
    except Exception:  # a bad setting: the command itself reports it, as Django words it
        return None
    if database["ENGINE"] != "django.db.backends.sqlite3":
        return None
    path = Path(database["NAME"])
    return None if path.exists() else path


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line
    from django.db.utils import OperationalError

    new_sqlite_file = _sqlite_file_to_be_created()
    try:
        execute_from_command_line(sys.argv)
    except OperationalError as exc:
        # A command other than migrate, run before any migration: say so, rather than "no such table", and do
        # not leave the empty file behind, on which the next command would fail the same way without this.
        if new_sqlite_file is None or "no such table" not in str(exc):
            raise
        if new_sqlite_file.exists() and new_sqlite_file.stat().st_size == 0:
            new_sqlite_file.unlink()
        raise SystemExit(
            f"database not migrated: {new_sqlite_file} did not exist; run `make run` or `manage.py migrate` "
            "(with the same TIPOFF_VAR_DIR or DATABASE_URL) first"
        ) from None


if __name__ == "__main__":
    main()
