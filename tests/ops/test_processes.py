"""The Procfile and gunicorn.conf.py run for real against the test stack.

honcho runs the Procfile's lines as a platform would; gunicorn serves real
HTTP on a free loopback port; the RQ worker registers in the run's Redis.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from redis import Redis
from rq import Worker

from irisvue.settings import stream_settings
from tests.support.servers import (
    HONCHO_STOPPED,
    ROOT,
    VENV_BIN,
    Server,
    child_env,
    gunicorn_conf,
    honcho_children,
    http_get,
    start,
)
from tests.support.stack import free_port

pytestmark = pytest.mark.slow

QUEUES = ["emails", "default", "exports"]


def _honcho(*processes: str) -> list[str]:
    # `--env /dev/null`: a developer's .env must not leak into the test stack.
    return [str(VENV_BIN / "honcho"), "start", "--no-colour", "--env", "/dev/null", *processes]


def _new_workers(redis: Redis, before: set[str], timeout: float) -> list[Worker]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [w for w in Worker.all(connection=redis) if w.name not in before]
        if found:
            return found
        time.sleep(0.2)
    return []


def _port_closed(port: int) -> bool:
    try:
        http_get(f"http://127.0.0.1:{port}/health", timeout=1)
    except OSError:
        return True
    return False


def test_procfile_web_and_worker_start_serve_and_stop_cleanly(stack_env, tmp_path):
    if not (ROOT / "worker.py").exists():
        pytest.skip("worker.py does not exist yet: the Procfile's worker line cannot run")
    port = free_port()
    env = child_env(BIND=f"127.0.0.1:{port}", WEB_CONCURRENCY="2", GUNICORN_THREADS="2")
    redis = Redis.from_url(stack_env["REDIS_URL"])
    before = {w.name for w in Worker.all(connection=redis)}
    try:
        with start(_honcho("web", "worker"), env, tmp_path / "honcho.log") as server:
            honcho_children(server, {"web", "worker"})
            body = server.wait_ok(f"http://127.0.0.1:{port}/health/ready")
            assert json.loads(body)["status"] == "ok"

            workers = _new_workers(redis, before, timeout=60)
            assert len(workers) == 1, server.output()
            assert workers[0].queue_names() == QUEUES  # priority order

            code = server.terminate(timeout=30)
            output = server.output()
            assert code == 143, output  # honcho's answer to SIGTERM
            assert set(dict(HONCHO_STOPPED.findall(output))) == {"web", "worker"}, output
            # Graceful: both finished within honcho's 5 s grace, no SIGKILL, nothing left.
            assert "SIGKILL" not in output and "cold shut down" not in output, output
            assert server.children_gone(), output
            assert _port_closed(port)
            # A warm shutdown deregisters the worker.
            assert not [w for w in Worker.all(connection=redis) if w.name not in before]
    finally:
        redis.close()


def _head_revision() -> str:
    config = AlembicConfig()
    config.set_main_option("script_location", str(ROOT / "migrations"))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head
    return head


def test_procfile_release_migrates_an_empty_database_twice(stack, stack_env, tmp_path):
    url = sa.make_url(stack.database_url)
    name = f"irisvue_release_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(
        url.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    target = url.set(database=name).render_as_string(hide_password=False)
    try:
        env = child_env(DATABASE_URL=target)
        for attempt in range(2):  # the second release finds nothing to do and succeeds
            with start(_honcho("release"), env, tmp_path / f"release-{attempt}.log") as server:
                code = server.proc.wait(120)
                output = server.output()
            assert dict(HONCHO_STOPPED.findall(output)) == {"release": "0"}, output
            assert code == 0, output
        engine = sa.create_engine(target, poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
            tables = set(sa.inspect(conn).get_table_names())
            documents = conn.execute(sa.text("SELECT count(*) FROM consent_documents")).scalar_one()
        engine.dispose()
        assert version == _head_revision()
        assert {"users", "consent_records", "jobs"} <= tables
        assert documents == 12  # the release also publishes the consent texts
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _requests_counted(body: bytes, route: str) -> float:
    total = 0.0
    for labels, value in re.findall(
        r"^irisvue_http_requests_total\{(.*)\} (\S+)$", body.decode(), re.MULTILINE
    ):
        if {f'route="{route}"', 'method="GET"', 'status="200"'} <= set(labels.split(",")):
            total += float(value)
    return total


def _json_lines(output: str) -> list[dict]:
    lines = []
    for line in output.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))  # a broken JSON line fails the test
    return lines


def _access_lines(output: str, path: str) -> list[dict]:
    return [
        line
        for line in _json_lines(output)
        if line.get("logger") == "gunicorn.access" and line.get("path") == path
    ]


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _send_until_both_workers_served(server: Server, base: str) -> tuple[int, set[int]]:
    """Concurrent fresh connections to /health until both workers have served some."""
    sent, pids = 0, set()
    deadline = time.monotonic() + 40
    with ThreadPoolExecutor(16) as pool:
        while (len(pids) < 2 or sent < 40) and time.monotonic() < deadline:
            results = list(pool.map(lambda _: http_get(base + "/health?token=leak-me"), range(32)))
            assert [status for status, _ in results] == [200] * 32
            sent += 32
            pids = {line["pid"] for line in _access_lines(server.output(), "/health")}
    assert len(pids) == 2, f"one worker served everything:\n{server.output()[-2000:]}"
    return sent, pids


def test_gunicorn_workers_share_metrics_and_log_json_without_query(live_server):
    # Metric directories of an arbiter that was SIGKILLed (pid gone) and of a live one.
    shm = Path("/dev/shm")
    parent = shm if os.access(shm, os.W_OK) else Path(tempfile.gettempdir())
    orphan = parent / f"irisvue-prometheus-{_dead_pid()}-orphan"
    alive = parent / f"irisvue-prometheus-{os.getpid()}-alive"
    orphan.mkdir()
    alive.mkdir()
    try:
        server = live_server(
            ready="/",  # counted under route "/", not "/health"
            WEB_CONCURRENCY="2",
            GUNICORN_THREADS="4",
            LOG_LEVEL="INFO",
        )
        base = server.base
        assert not orphan.exists() and alive.exists()
        sent, pids = _send_until_both_workers_served(server, base)

        # Whichever worker answers /metrics, it reports every worker's requests.
        for _ in range(6):
            status, body = http_get(base + "/metrics")
            assert status == 200
            assert _requests_counted(body, "/health") == sent

        # A worker that dies keeps its counts; its replacement adds to them.
        booted = server.output().count("Booting worker")
        os.kill(min(pids), signal.SIGKILL)
        deadline = time.monotonic() + 30
        while server.output().count("Booting worker") == booted:
            assert time.monotonic() < deadline, "no replacement worker"
            time.sleep(0.1)
        server.wait_ok(base + "/")
        for _ in range(4):
            assert _requests_counted(http_get(base + "/metrics")[1], "/health") == sent

        code = server.terminate(timeout=40)
        output = server.output()
    finally:
        alive.rmdir()
        if orphan.exists():
            orphan.rmdir()
    assert code == 0, output
    assert "leak-me" not in output and "token=" not in output
    access = _access_lines(output, "/health")
    assert len(access) == sent
    assert all(
        line["status"] == 200 and line["method"] == "GET" and line["request_id"] for line in access
    )
    assert "Traceback" not in output, output
    multiproc = re.search(r"prometheus multiprocess dir: (\S+?)\"", output)
    assert multiproc, output
    assert not Path(multiproc.group(1)).exists()  # the arbiter removed what it created


def test_gunicorn_conf_reads_its_settings_from_the_environment(monkeypatch):
    def load(**env: str) -> dict:
        return gunicorn_conf(monkeypatch, **env)

    default = load()
    assert default["bind"] == ["127.0.0.1:8000"]  # loopback unless told otherwise
    assert default["worker_class"] == "gthread"
    assert default["workers"] >= 2 and default["threads"] == 3
    # The app reads the same default (job streams' share, the token check's pool).
    assert stream_settings({})["GUNICORN_THREADS"] == default["threads"]
    assert default["timeout"] == 30 and default["preload_app"] is False
    assert default["control_socket_disable"] is True
    assert default["limit_request_line"] > 0 and default["limit_request_fields"] > 0
    assert load(PORT="5100")["bind"] == ["0.0.0.0:5100"]  # a platform's PORT
    assert load(PORT="5100", BIND="127.0.0.1:9000")["bind"] == ["127.0.0.1:9000"]
    custom = load(WEB_CONCURRENCY="3", GUNICORN_THREADS="8")
    assert (custom["workers"], custom["threads"]) == (3, 8)
    # Each worker its own SO_REUSEPORT socket (the kernel spreads connections), unless off.
    assert default["reuse_port"] is True
    assert load(GUNICORN_REUSE_PORT="0")["reuse_port"] is False
