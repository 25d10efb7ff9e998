"""The engine and simulator stay pure: the live controller, replay and the
benchmark must run the same code, so neither may import Django or boto3."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PURE_PACKAGES = ("scaling/policy", "scaling/sim")
FORBIDDEN = ("django", "boto3", "botocore", "celery", "redis")


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _pure_files() -> list[Path]:
    return [p for pkg in PURE_PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]


def test_it_finds_the_pure_packages() -> None:
    assert len(_pure_files()) >= 4


@pytest.mark.parametrize("path", _pure_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_it_imports_neither_django_nor_boto3(path: Path) -> None:
    bad = [name for name in _imports(path) if name.split(".")[0] in FORBIDDEN]
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_it_would_catch_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("import os\nfrom django.db import models\n")
    assert "django.db" in _imports(sample)
