"""The README and docs/ stay true to the code: every setting documented, every link resolving."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import require

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


DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "bench").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
DOCUMENT_IN_CODE = re.compile(r"`([^`\s]+\.md)`")  # a document named in code, `bench/CHARTS.md`


def _references(document: Path) -> list[tuple[str, list[Path]]]:
    """Each relative link, and each document named in code, with where it may point: a link from the document's
    folder, a name in code from there or from the repository's root."""
    text = re.sub(r"^```.*?^```", "", document.read_text(), flags=re.MULTILINE | re.DOTALL)  # not in code blocks
    links = [target.split("#", 1)[0] for target in LINK.findall(text)]
    return [
        *((link, [document.parent / link]) for link in links if link and not re.match(r"[a-z][a-z0-9+.-]*:", link)),
        *((name, [document.parent / name, ROOT / name]) for name in DOCUMENT_IN_CODE.findall(text)),
    ]


def _in_the_repository(path: Path) -> bool:
    return path.resolve().is_relative_to(ROOT) and path.exists()


def test_the_documents_have_references_to_check() -> None:
    # So that the test below cannot pass by finding none.
    assert "docs/security.md" in [target for target, _ in _references(ROOT / "README.md")]


def test_every_relative_link_in_the_documents_resolves_to_a_file_in_the_repository() -> None:
    dead = [
        f"{document.relative_to(ROOT)}: {target}"
        for document in DOCUMENTS
        for target, candidates in _references(document)
        if not any(_in_the_repository(path) for path in candidates)
    ]
    assert not dead, "points to nothing in a clone of the repository:\n" + "\n".join(dead)


def test_the_serving_model_is_the_shared_contract_word_for_word() -> None:
    # bench/SERVING_MODEL.md is the repository's copy of the contract kept beside it, in ../shared/bench/.
    shared = ROOT.parent / "shared" / "bench" / "SERVING_MODEL.md"
    require(shared.is_file(), f"no shared contract beside the repository ({shared}) to compare the copy with")
    assert (ROOT / "bench" / "SERVING_MODEL.md").read_text() == shared.read_text()
