"""Bad configuration refuses to start and names the variable."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _check(**env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in {"TICK_SECONDS", "DATABASE_URL"}} | env
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE','config.settings'); django.setup()",
        ],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TICK_SECONDS": "fast"}, "TICK_SECONDS='fast' is not an integer"),
        ({"TICK_SECONDS": "0"}, "TICK_SECONDS=0 is below the minimum 1"),
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL='http://x' must start with redis://"),
        ({"OVERRIDE_APPROVAL_COST": "nan"}, "OVERRIDE_APPROVAL_COST='nan' is not a finite number"),
        ({"OVERRIDE_MAX_HOURS_PIN": "inf"}, "OVERRIDE_MAX_HOURS_PIN='inf' is not a finite number"),
        ({"OPERATOR_TIME_ZONE": "Foo/Bar"}, "OPERATOR_TIME_ZONE='Foo/Bar' is not a known time zone"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL='LOUD' is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ({"WHATIF_MAX_PER_USER": "0"}, "WHATIF_MAX_PER_USER=0 is below the minimum 1"),
        ({"METRIC_RETENTION_DAYS": "0"}, "METRIC_RETENTION_DAYS=0 is below the minimum 1"),
        ({"METRIC_RETENTION_DAYS": "a month"}, "METRIC_RETENTION_DAYS='a month' is not an integer"),
        # Shorter than what is read back: the engine learns from the week before its refit period began (up to
        # 6 h 10 min before now), the charts and what-if show up to a week.
        (
            {"METRIC_RETENTION_DAYS": "7"},
            "METRIC_RETENTION_DAYS=7 is shorter than what Tipoff reads back: the engine's learning window "
            "(FORECAST_LEARN_WINDOW, read back from the start of a 6 h refit period) reaches 8 days; "
            "set it to 8 or more",
        ),
        (
            {"DECISION_RETENTION_DAYS": "6"},
            "DECISION_RETENTION_DAYS=6 is shorter than what Tipoff reads back: the longest chart range",
        ),
    ],
)
def test_it_refuses_to_start_with_a_bad_value(env: dict[str, str], message: str) -> None:
    result = _check(**env)
    assert result.returncode != 0
    assert message in result.stderr


def test_it_starts_with_a_retention_exactly_as_long_as_what_it_reads_back() -> None:
    result = _check(METRIC_RETENTION_DAYS="8", DECISION_RETENTION_DAYS="7")
    assert result.returncode == 0, result.stderr


def _without_secret(var_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "TIPOFF_ALLOW_INSECURE_SECRET", "DEBUG"}}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE','config.settings'); django.setup();"
            "from django.conf import settings; print(settings.SECRET_KEY)",
        ],
        cwd=ROOT,
        env=env | {"TIPOFF_VAR_DIR": str(var_dir)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_it_requires_a_secret_key_outside_debug(tmp_path: Path) -> None:
    assert "SECRET_KEY must be set" in _without_secret(tmp_path).stderr


def test_it_reads_the_key_make_run_generated(tmp_path: Path) -> None:
    # So `manage.py` commands beside a `make run` need no SECRET_KEY of their own.
    (tmp_path / "secret_key").write_text("generated-by-make-run\n")
    result = _without_secret(tmp_path)
    assert (result.returncode, result.stdout.strip()) == (0, "generated-by-make-run"), result.stderr


# Settings read by Django itself or by a library rather than by Tipoff's code.
LIBRARY_PREFIXES = ("CELERY_", "AXES_", "OIDC_", "WHITENOISE_")
LIBRARY_SETTINGS = {"ROOT_URLCONF", "CONTENT_SECURITY_POLICY", "LOGIN_REDIRECT_URL_FAILURE"}


def test_every_setting_tipoff_defines_is_read_somewhere() -> None:
    from django.conf import global_settings

    source = (ROOT / "config" / "settings.py").read_text()
    tree = ast.parse(source)
    defined = [
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name) and target.id.isupper()
    ]
    read_in_settings = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    code = "\n".join(
        path.read_text()
        for folder in ("config", "scaling", "dashboard", "scripts", "templates")
        for path in (ROOT / folder).rglob("*")
        if path.suffix in {".py", ".html"} and path.name != "settings.py"
    )
    unread = [
        name
        for name in defined
        if not hasattr(global_settings, name)
        and not name.startswith(LIBRARY_PREFIXES)
        and name not in LIBRARY_SETTINGS
        and name not in read_in_settings
        and name not in code
    ]
    assert not unread, f"settings nothing reads: {', '.join(unread)}"
