"""Where Tipoff keeps its files, computed in one place: the settings and `make run` (scripts/dev.py) read it alike."""

from __future__ import annotations

from pathlib import Path

from config.env import env_str

BASE_DIR = Path(__file__).resolve().parent.parent


def var_dir() -> Path:
    """TIPOFF_VAR_DIR, or var/ in the checkout: the SQLite database, the generated secret key, beat's schedule."""
    return Path(env_str("TIPOFF_VAR_DIR") or BASE_DIR / "var")
