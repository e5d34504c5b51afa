"""Shared harness for the benchmarks in bench/: servers, wrk, /proc readings, results.

Everything here binds to 127.0.0.1 only, and every process it starts is stopped
by the context manager that started it (the whole process group, SIGTERM then
SIGKILL).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
RESULTS_DIR = ROOT / "bench" / "results"
DEFAULT_DATABASE_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/irisvue_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
MIB = 1024 * 1024


# --- environment and dependencies -------------------------------------------


def database_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)


def redis_url() -> str:
    return os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)


def require_wrk() -> bool:
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (Debian: apt-get install -y wrk)", file=sys.stderr)
        return False
    return True


def app_env(workdir: Path, workers: int, **extra: str) -> dict[str, str]:
    """The environment of a benchmarked gunicorn: loopback services, rate limits off."""
    passthrough = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TMPDIR"}}
    return {
        **passthrough,
        "IRISVUE_ENV": "development",
        "IRISVUE_INSTANCE_PATH": str(workdir / "instance"),
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url(),
        "RATELIMIT_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
        "WEB_CONCURRENCY": str(workers),
        **extra,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare_database(url: str, env: dict[str, str], *, release: bool = False) -> None:
    """Creates the scratch database when missing and migrates it to head.

    `release=True` runs `flask release` instead (migrations plus the consent texts).
    """
    import sqlalchemy as sa

    target = sa.make_url(url)
    admin = sa.create_engine(
        target.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
    )
    with admin.connect() as conn:
        exists = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
        ).scalar()
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
    command = ["release"] if release else ["db", "upgrade"]
    subprocess.run(
        [str(VENV_BIN / "flask"), "--app", "wsgi", *command],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )


def check_redis(url: str) -> None:
    from redis import Redis

    client = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    finally:
        client.close()


# --- processes ----------------------------------------------------------------


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the process group, SIGKILL it if it lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


@contextlib.contextmanager
def gunicorn(app: str, port: int, env: dict[str, str], log: Path) -> Iterator[tuple[str, int]]:
    """One gunicorn with the project's config; yields (base URL, arbiter pid), stops it after."""
    argv = [str(VENV_BIN / "gunicorn"), "--config", str(ROOT / "gunicorn.conf.py"), app]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**env, "BIND": f"127.0.0.1:{port}"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        stop_group(proc)


@contextlib.contextmanager
def moto_server(workdir: Path) -> Iterator[str]:
    """moto's standalone S3 server on loopback; yields its `host:port`."""
    port = free_port()
    env = {
        **os.environ,
        "MOTO_ALLOW_NONEXISTENT_REGION": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with (workdir / "moto.log").open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"bench: moto server did not start (see {workdir / 'moto.log'})")
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        stop_group(proc)


def wait_ok(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                if response.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}: {exc.read()[:300]!r}"
        except OSError as exc:
            last = repr(exc)
        time.sleep(0.25)
    raise SystemExit(f"bench: {url} not ready after {timeout}s ({last})")


def _stat_fields(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def worker_pids(arbiter: int) -> list[int]:
    """The arbiter's live child processes (gunicorn's workers)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(_stat_fields(int(stat.parent.name))[1]) == arbiter:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return sorted(found)


def wait_workers(arbiter: int, count: int, url: str, timeout: float = 60.0) -> list[int]:
    """Waits until `count` workers exist and answer; returns their pids."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = worker_pids(arbiter)
        if len(pids) >= count:
            # Each worker loads the app itself: a few requests warm them all.
            for _ in range(4 * count):
                wait_ok(url, max(1.0, deadline - time.monotonic()))
            return pids
        time.sleep(0.2)
    raise SystemExit(f"bench: gunicorn {arbiter} has not started {count} workers")


def cpu_seconds(arbiter: int) -> float:
    """CPU time (user + system) of a gunicorn arbiter and its live workers."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = _stat_fields(int(stat.parent.name))
        except (OSError, ValueError):
            continue
        pid, ppid = int(stat.parent.name), int(fields[1])
        if arbiter in (pid, ppid):
            total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def memory_kib(pid: int, field: str = "VmRSS") -> int:
    """A /proc/<pid>/status memory field in KiB (VmRSS now, VmHWM peak), 0 if gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


def reset_peak(pid: int) -> bool:
    """Resets the kernel's VmHWM of `pid` to its current RSS (Linux >= 4.0)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class RssSampler:
    """Samples VmRSS of some processes in a thread; `peak_kib[pid]` is the highest seen.

    Sampling can miss a short spike, so callers also read VmHWM (after `reset_peak`).
    """

    def __init__(self, pids: Sequence[int], interval: float = 0.02) -> None:
        self.pids = list(pids)
        self.interval = interval
        self.peak_kib = dict.fromkeys(self.pids, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in self.pids:
                self.peak_kib[pid] = max(self.peak_kib[pid], memory_kib(pid))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# --- HTTP and wrk -------------------------------------------------------------


def http_json(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """One JSON request; returns (status, parsed body or None)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw[:300]


def expect(status: int, body: Any, wanted: int, what: str) -> Any:
    if status != wanted:
        raise SystemExit(f"bench: {what} answered {status}, expected {wanted}: {body!r}")
    return body


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def lua_script(path: Path, method: str, body: str | None, headers: dict[str, str]) -> Path:
    """A wrk script sending one fixed request (method, body, headers)."""
    lines = [f"wrk.method = {json.dumps(method)}"]
    if body is not None:
        lines.append(f"wrk.body = {json.dumps(body)}")
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_wrk(
    url: str,
    seconds: int,
    connections: int,
    threads: int,
    *,
    script: Path | None = None,
    timeout: int = 10,
) -> dict[str, Any]:
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        f"{timeout}s",
        "--latency",
    ]
    if script is not None:
        argv += ["-s", str(script)]
    output = subprocess.run(
        [*argv, url], capture_output=True, text=True, check=True, timeout=seconds + 60
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, re.MULTILINE))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors:.*", output)
    return {
        "requests_per_s": rps,
        "p50_ms": _ms(latency["50"]),
        "p99_ms": _ms(latency["99"]),
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),  # type: ignore[union-attr]
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": errors.group(0) if errors else "",
    }


def measure(
    url: str, arbiter: int, seconds: int, connections: int, threads: int, **wrk: Any
) -> dict[str, Any]:
    """wrk's figures plus the server's CPU time per request (robust to a busy machine)."""
    before = cpu_seconds(arbiter)
    row = run_wrk(url, seconds, connections, threads, **wrk)
    row["cpu_us_per_req"] = (cpu_seconds(arbiter) - before) / max(row["requests"], 1) * 1e6
    return row


def median_run(rows: list[dict]) -> dict:
    """The run with the median throughput (its own latencies, not a mix of runs)."""
    ordered = sorted(rows, key=lambda row: row["requests_per_s"])
    return {**ordered[len(ordered) // 2], "rounds_rps": [row["requests_per_s"] for row in rows]}


# --- reporting ----------------------------------------------------------------


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def busy_warning() -> None:
    if os.getloadavg()[0] > (os.cpu_count() or 1) + 0.5:
        print("bench: the machine is busy; trust the CPU-based and same-run ratios")


def write_results(name: str, payload: dict[str, Any]) -> Path:
    """bench/results/<name>-<time>.json, with the time, CPU count and load average."""
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"{name}-{stamp}.json"
    path.write_text(
        json.dumps(
            {"when": stamp, "cpus": os.cpu_count(), "load_average": load_average(), **payload},
            indent=2,
            default=str,
        )
    )
    return path
