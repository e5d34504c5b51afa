"""Fault-injection fixtures: a PostgreSQL of this module's own, and before/after counts.

The suite's PostgreSQL (tests/services.py) is shared by every test, so the
tests that restart a database get their own: a second pgserver cluster (the
PyPI-shipped binaries, never the machine's servers), migrated once per module.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from redis import Redis

from irisvue import create_app
from irisvue.extensions import db
from tests.conftest import reset_state

PARK_LOCK = 6_006_006  # the advisory lock parking triggers wait on

# Every table a request of these tests may write.
TABLES = (
    "users",
    "sessions",
    "audit_events",
    "jobs",
    "email_tokens",
    "user_keys",
    "captures",
    "consent_records",
    "privacy_requests",
    "erasure_tombstones",
)


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registrations and logins here test faults, not hashing cost."""
    monkeypatch.setenv("ARGON2_TIME_COST", "1")
    monkeypatch.setenv("ARGON2_MEMORY_COST", "1024")
    monkeypatch.setenv("ARGON2_PARALLELISM", "1")


def row_counts(app: Flask) -> dict[str, int]:
    """Rows per table, read outside the app's session."""
    with app.app_context(), db.engine.connect() as conn:
        counts = {name: conn.scalar(sa.text(f'SELECT count(*) FROM "{name}"')) for name in TABLES}
    return counts


def rq_job_ids(redis: Redis) -> set[bytes]:
    """Every RQ job hash in Redis: what a worker could still run."""
    return set(redis.scan_iter(match="rq:job:*", count=500))


@dataclass
class OwnPostgres:
    """A pgserver cluster the test may restart; `url` names its migrated database."""

    server: object
    pgdata: Path
    url: str

    def admin_engine(self) -> sa.Engine:
        return sa.create_engine(self.url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)

    def _pg_ctl(self, *args: str) -> None:
        from pgserver._commands import pg_ctl

        system_user = self.server.system_user  # type: ignore[attr-defined]
        pg_ctl(["-w", *args], pgdata=self.pgdata, user=system_user, timeout=60)

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "stop")

    def start(self) -> None:
        """Back on the same unix socket, so the app's URL is unchanged."""
        socket_dir = sa.make_url(self.url).query["host"]
        log = str(self.pgdata / "log")
        self._pg_ctl("-o", '-h ""', "-o", f"-k {socket_dir}", "-l", log, "start")
        wait_for_database(self.url)

    def ensure_running(self) -> None:
        """After a failed test: the server may have been left stopped."""
        try:
            self._pg_ctl("status")
        except subprocess.CalledProcessError:  # exit 3: no server running
            self.start()
        wait_for_database(self.url)

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: every backend is terminated, the server comes back."""
        self._pg_ctl("-m", "fast", "restart")
        wait_for_database(self.url)


def wait_for_database(url: str, timeout: float = 30.0) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                with engine.connect() as conn:
                    conn.execute(sa.text("SELECT 1"))
                return
            except sa.exc.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def own_postgres(stack_env: dict[str, str]) -> Iterator[OwnPostgres]:
    import flask_migrate
    import pgserver

    # Not under pytest's basetemp: another pytest run on the machine resets that
    # tree to mode 0700, which locks out the unprivileged user pgserver runs as.
    workdir = Path(tempfile.mkdtemp(prefix="irisvue-faults-pg-"))
    pgdata = workdir / "pg"
    server = pgserver.get_server(str(pgdata), cleanup_mode="stop")
    url = server.get_uri("irisvue_faults").replace("postgresql://", "postgresql+psycopg2://", 1)
    own = OwnPostgres(server=server, pgdata=Path(server.pgdata), url=url)
    try:
        admin = sa.create_engine(
            server.get_uri().replace("postgresql://", "postgresql+psycopg2://", 1),
            isolation_level="AUTOCOMMIT",
            poolclass=sa.pool.NullPool,
        )
        with admin.connect() as conn:
            conn.execute(sa.text('CREATE DATABASE "irisvue_faults"'))
        admin.dispose()
        app = create_app({"SQLALCHEMY_DATABASE_URI": url})
        with app.app_context():
            flask_migrate.upgrade()
            db.engine.dispose()
        yield own
    finally:
        # pgserver's cleanup stops only the postmaster it started, not one a restart made.
        with contextlib.suppress(subprocess.CalledProcessError):
            own._pg_ctl("-m", "fast", "stop")
        server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def pg_app(own_postgres: OwnPostgres) -> Iterator[Flask]:
    """The app on the module's own PostgreSQL (Redis and S3 are the suite's)."""
    application = create_app({"SQLALCHEMY_DATABASE_URI": own_postgres.url})
    application.config["TESTING"] = True
    yield application
    own_postgres.ensure_running()
    reset_state(application)


@contextlib.contextmanager
def parking_trigger(
    url: str, table: str, when: str, *, ready: Callable[[], None] | None = None
) -> Iterator[sa.Connection]:
    """A test-only trigger that parks writes to `table` matching `when` on an advisory lock.

    Yields the connection holding the lock: a request or worker that reaches such a
    write waits there, at a point in its transaction the test knows, until the
    test unlocks, terminates it, or restarts the server. `ready` runs before the
    cleanup (e.g. to bring a restarted server back).
    """
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    name = f"test_park_{table}"
    with engine.connect() as conn:
        conn.execute(
            sa.text(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"PERFORM pg_advisory_lock({PARK_LOCK}); PERFORM pg_advisory_unlock({PARK_LOCK}); "
                "RETURN NEW; END $$"
            )
        )
        conn.execute(
            sa.text(
                f"CREATE TRIGGER {name} BEFORE INSERT OR UPDATE ON {table} FOR EACH ROW "
                f"WHEN ({when}) EXECUTE FUNCTION {name}()"
            )
        )
    holder = engine.connect()
    holder.execute(sa.text(f"SELECT pg_advisory_lock({PARK_LOCK})"))
    try:
        yield holder
    finally:
        with contextlib.suppress(sa.exc.DBAPIError):
            holder.close()  # a restart may already have killed it
        (ready or (lambda: wait_for_database(url)))()
        with engine.connect() as conn:
            conn.execute(sa.text(f"DROP TRIGGER IF EXISTS {name} ON {table}"))
            conn.execute(sa.text(f"DROP FUNCTION IF EXISTS {name}()"))
        engine.dispose()


def unpark(holder: sa.Connection) -> None:
    holder.execute(sa.text(f"SELECT pg_advisory_unlock({PARK_LOCK})"))


def parked_backend(
    holder: sa.Connection, *, alive: Callable[[], None] | None = None, timeout: float = 60.0
) -> int:
    """The pid of the app's backend waiting at the parking trigger; `alive` asserts the
    process expected to get there has not died meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None:
            alive()
        pid = holder.scalar(
            sa.text(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'irisvue' "
                "AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
            )
        )
        if pid is not None:
            return pid
        time.sleep(0.05)
    raise AssertionError("nothing reached the parking trigger")
