"""The processes and services of a benchmark run: the app's environment, the scratch
PostgreSQL database, Redis, moto's S3 server, gunicorn and the RQ worker.

PostgreSQL: BENCH_DATABASE_URL, default the local server's scratch database
`irisvue_bench` (created and migrated when missing). Redis: BENCH_REDIS_URL, default
redis://127.0.0.1:6379/15. Rate limits are off in every run (RATELIMIT_ENABLED=false).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import ROOT
from .procfs import children

VENV_BIN = Path(sys.executable).parent
DEFAULT_DATABASE_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/irisvue_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
S3_ACCESS_KEY = "bench-access-key"
S3_SECRET_KEY = "bench-secret-key-not-a-real-one"  # moto accepts any credentials


# --- environment ------------------------------------------------------------------


def database_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)


def redis_url() -> str:
    return os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)


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


def s3_env(endpoint: str, bucket: str, sse: str = "s3") -> dict[str, str]:
    """The app's settings for moto's S3 server at `endpoint` (pass them to `app_env`)."""
    return {
        "S3_ENDPOINT": endpoint,
        "S3_ACCESS_KEY": S3_ACCESS_KEY,
        "S3_SECRET_KEY": S3_SECRET_KEY,
        "S3_BUCKET_NAME": bucket,
        "S3_SSE": sse,
    }


def s3_bucket(endpoint: str, bucket: str) -> Any:
    """A minio client of moto's S3 server, with `bucket` created if missing."""
    from minio import Minio

    client = Minio(endpoint, S3_ACCESS_KEY, S3_SECRET_KEY, secure=False)
    if not client.bucket_exists(bucket):
        client.make_bucket(bucket)
    return client


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A temporary directory (instance folder, logs, wrk scripts), removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield workdir
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def command_failed(exc: subprocess.CalledProcessError) -> int:
    """Prints what a setup command (flask, wrk) said; the script's exit status."""
    print(f"bench: {exc.cmd[0]} failed:\n{exc.stderr or exc.stdout}", file=sys.stderr)
    return 1


# --- PostgreSQL and Redis ---------------------------------------------------------


def prepare_services(env: dict[str, str], *, release: bool = False) -> None:
    """Redis answers, the scratch database exists and is migrated (see prepare_database)."""
    check_redis(env["REDIS_URL"])
    prepare_database(env["DATABASE_URL"], env, release=release)


def check_redis(url: str) -> None:
    from redis import Redis

    client = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    finally:
        client.close()


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


def sql(query: str, **params: Any) -> list[tuple]:
    """Rows of one query on the scratch database (setup and bookkeeping only)."""
    import sqlalchemy as sa

    engine = sa.create_engine(database_url(), poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        result = conn.execute(sa.text(query), params)
        rows = [tuple(row) for row in result] if result.returns_rows else []
    engine.dispose()
    return rows


def drain_jobs(since: float, timeout: float) -> dict[str, Any]:
    """Waits until the jobs created since `since` are final; counts them by kind and status."""
    query = (
        "SELECT kind, status, count(*) FROM jobs "
        "WHERE created_at >= to_timestamp(:since) GROUP BY kind, status"
    )
    started = time.monotonic()
    while True:
        rows = sql(query, since=since)
        pending = sum(n for _, status, n in rows if status in ("queued", "started"))
        if not pending or time.monotonic() - started > timeout:
            break
        time.sleep(1)
    counts: dict[str, dict[str, int]] = {}
    for kind, status, n in rows:
        counts.setdefault(kind, {})[status] = n
    errors = sql(
        "SELECT kind, error FROM jobs WHERE created_at >= to_timestamp(:since) "
        "AND status = 'failed' LIMIT 5",
        since=since,
    )
    return {
        "by_kind": counts,
        "pending": pending,
        "drain_seconds": time.monotonic() - started,
        "failed_samples": [list(row) for row in errors],
    }


# --- processes --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


def _spawn(argv: list[str], env: dict[str, str], log: Path, cwd: Path = ROOT) -> subprocess.Popen:
    """`argv` in its own session (so its whole group can be stopped), output appended to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


@contextlib.contextmanager
def gunicorn(
    app: str, port: int, env: dict[str, str], log: Path, root: Path = ROOT
) -> Iterator[tuple[str, int]]:
    """One gunicorn with the project's config; yields (base URL, arbiter pid), stops it after.

    `root`: the source tree to serve (its gunicorn.conf.py and its `irisvue`, which
    shadows the installed one); bench/ab.py passes another checkout."""
    argv = [str(VENV_BIN / "gunicorn"), "--config", str(root / "gunicorn.conf.py"), app]
    proc = _spawn(argv, {**env, "BIND": f"127.0.0.1:{port}"}, log, cwd=root)
    try:
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        stop_group(proc)


@contextlib.contextmanager
def rq_worker(env: dict[str, str], log: Path, *, burst: bool = False) -> Iterator[subprocess.Popen]:
    """The project's `worker.py` (with `--burst`: until the queue is empty); stopped after."""
    argv = [sys.executable, str(ROOT / "worker.py"), *(["--burst"] if burst else [])]
    proc = _spawn(argv, env, log)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            stop_group(proc)


@contextlib.contextmanager
def moto_server(workdir: Path) -> Iterator[str]:
    """moto's standalone S3 server on loopback; yields its `host:port`."""
    port = free_port()
    env = {**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true", "AWS_DEFAULT_REGION": "us-east-1"}
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    proc = _spawn(argv, env, workdir / "moto.log", cwd=workdir)
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


def wait_workers(arbiter: int, count: int, url: str, timeout: float = 60.0) -> list[int]:
    """Waits until `count` gunicorn workers exist and answer; returns their pids."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = children(arbiter)
        if len(pids) >= count:
            # Each worker loads the app itself: a few requests warm them all.
            for _ in range(4 * count):
                wait_ok(url, max(1.0, deadline - time.monotonic()))
            return pids
        time.sleep(0.2)
    raise SystemExit(f"bench: gunicorn {arbiter} has not started {count} workers")


def log_errors(path: Path, limit: int = 8) -> list[str]:
    """Error lines and 5xx access lines of a JSON log (and any traceback line)."""
    found = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            if "Traceback" in line or "Error" in line:
                found.append(line[:400])
            continue
        if not isinstance(entry, dict):
            continue
        if entry.get("level") in ("error", "critical") or int(entry.get("status") or 0) >= 500:
            found.append(line[:400])
        if len(found) >= limit:
            break
    return found
