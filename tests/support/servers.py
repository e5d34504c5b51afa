"""Real server processes: start, wait for HTTP, stop, clean up.

`gunicorn()` is the one way a test runs the service as production does
(the project's gunicorn.conf.py on a free loopback port); the `live_server`
fixture is built on it. `start()` runs any other command (honcho, the worker).
"""

from __future__ import annotations

import contextlib
import os
import re
import runpy
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from tests.support.stack import free_port

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment (the test stack's) for a child, venv first on PATH."""
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


GUNICORN_CONF_VARIABLES = (
    "BIND",
    "PORT",
    "WEB_CONCURRENCY",
    "GUNICORN_THREADS",
    "GUNICORN_REUSE_PORT",
)


def gunicorn_conf(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, Any]:
    """gunicorn.conf.py's settings as gunicorn reads them, under exactly `env`
    (its other variables unset) for the rest of the test."""
    for name in GUNICORN_CONF_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _processes() -> Iterator[tuple[int, str, int, int]]:
    """(pid, state, parent pid, process group) of every process, from /proc."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited while we looked
        yield int(stat.parent.name), fields[0], int(fields[1]), int(fields[2])


def group_alive(pgid: int) -> bool:
    """True while a live (non-zombie) process remains in process group `pgid`."""
    return any(group == pgid and state != "Z" for _, state, _, group in _processes())


@dataclass
class Server:
    """A process started in its own session, output in `log`."""

    proc: subprocess.Popen[bytes]
    log: Path
    extra_groups: set[int] = field(default_factory=set)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ok(self, url: str, timeout: float = 90.0) -> bytes:
        """Polls `url` until it answers 200; fails early if the process died."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"exited with {self.proc.returncode}:\n{self.output()}")
            try:
                status, body = http_get(url, timeout=3)
            except OSError as exc:
                last = repr(exc)
            else:
                if status == 200:
                    return body
                last = f"HTTP {status}: {body[:500]!r}"
            time.sleep(0.25)
        raise AssertionError(f"{url} not OK after {timeout}s ({last}):\n{self.output()[-4000:]}")

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM to the process group; returns the exit code (fails if it hangs)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            self.kill()
            raise AssertionError(
                f"still running {timeout}s after SIGTERM:\n{self.output()}"
            ) from exc

    def kill(self) -> None:
        # honcho starts each Procfile process in a session of its own.
        self.extra_groups.update(int(m[2]) for m in HONCHO_STARTED.finditer(self.output()))
        for group in {self.proc.pid, *self.extra_groups}:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)

    def children_gone(self, timeout: float = 10.0) -> bool:
        """Every process of every Procfile process's group has exited."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(group_alive(pgid) for pgid in self.extra_groups):
                return True
            time.sleep(0.1)
        return False


@contextlib.contextmanager
def start(argv: list[str], env: dict[str, str], log: Path) -> Iterator[Server]:
    """Runs `argv` from the repository root; whatever is left is killed on exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(proc, log)
    try:
        yield server
    finally:
        if proc.poll() is None or server.extra_groups:
            server.kill()


HONCHO_STARTED = re.compile(r"(\w+)(?:\.\d+)? +started \(pid=(\d+)\)")
HONCHO_STOPPED = re.compile(r"(\w+)(?:\.\d+)? +stopped \(rc=(-?\d+)\)")


def honcho_children(server: Server, names: set[str], timeout: float = 20.0) -> dict[str, int]:
    """Pids of the Procfile processes honcho started (each leads its own session)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = {m[1]: int(m[2]) for m in HONCHO_STARTED.finditer(server.output())}
        server.extra_groups.update(found.values())
        if names <= set(found):
            return found
        if server.proc.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"honcho did not start {names}:\n{server.output()}")


GUNICORN = [str(VENV_BIN / "gunicorn"), "--config", "gunicorn.conf.py", "wsgi:app"]


@dataclass
class LiveServer(Server):
    """gunicorn serving the app on 127.0.0.1:`port`."""

    port: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=30)


@contextlib.contextmanager
def gunicorn(log: Path, *, ready: str = "/health", **settings: str) -> Iterator[LiveServer]:
    """gunicorn with the test stack's environment plus `settings`, answering 200 on `ready`.

    Whatever is still running when the block ends is killed.
    """
    port = free_port()
    env = child_env(BIND=f"127.0.0.1:{port}", **settings)
    with start(GUNICORN, env, log) as server:
        live = LiveServer(server.proc, server.log, server.extra_groups, port=port)
        live.wait_ok(f"{live.base}{ready}")
        yield live


@contextlib.contextmanager
def serve_in_thread(app: Flask) -> Iterator[int]:
    """The app on a real HTTP server on 127.0.0.1 (a thread of this process); yields the port."""
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


def start_worker(extra_env: dict[str, str], log_path: Path, *args: str) -> subprocess.Popen:
    """`python worker.py *args` from the repository root, in a process group of its own."""
    with log_path.open("ab") as log_file:
        return subprocess.Popen(
            [sys.executable, "worker.py", *args],
            cwd=ROOT,
            env={**os.environ, **extra_env},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group; kill_group also finds its work horses
        )


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the worker and its work horses. RQ puts each horse in a process group
    of its own (os.setpgrp), so killing the worker's group alone left a horse running
    its job, against this test's database, after the test had ended. The worker is
    stopped first so that it cannot fork a new horse in between."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGSTOP)
    horses = [pid for pid, _, parent, _ in _processes() if parent == proc.pid]
    for group in (*horses, proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):  # never hide the test's own failure
        proc.wait(10)
