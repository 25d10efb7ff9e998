"""The README and docs/ stay true to the code: every setting documented, every link resolving."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _variables_the_settings_read() -> set[str]:
    # config/env.py's readers (env_str, env_int, ...), called from the settings and from config/paths.py.
    source = "\n".join(path.read_text() for path in (ROOT / "config").glob("*.py") if path.name != "env.py")
    return set(re.findall(r"\benv_[a-z_]+\(\s*\"([A-Z][A-Z0-9_]*)\"", source))


def _readme_configuration_table() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Configuration\n", 1)[1].split("\n#", 1)[0]
    first_cells = [line.split("|")[1] for line in section.splitlines() if line.startswith("|")]
    return {name for cell in first_cells for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", cell)}


def test_the_settings_read_the_variables_this_test_finds() -> None:
    # So that the test below cannot pass by finding nothing.
    expected = {"DATABASE_URL", "TICK_SECONDS", "OVERRIDE_MAX_HOURS_PIN", "TIPOFF_VAR_DIR"}
    assert expected <= _variables_the_settings_read()


def test_every_variable_the_settings_read_is_in_the_readme_configuration_table() -> None:
    missing = sorted(_variables_the_settings_read() - _readme_configuration_table())
    assert not missing, f"read by config/ but not in the README's configuration table: {', '.join(missing)}"
