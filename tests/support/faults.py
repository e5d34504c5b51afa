"""Fault injection: a TCP proxy to cut, a PostgreSQL to restart, writes parked mid-transaction.

The suite's PostgreSQL (tests/support/stack.py) is shared by every test, so
the tests that restart a database get their own (`OwnPostgres`, the
`own_postgres` fixture): a second pgserver cluster (the PyPI-shipped
binaries, never the machine's servers), migrated once per module.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from flask import Flask

from tests.support.servers import kill_group
from tests.support.stack import free_port

PARK_LOCK = 6_006_006  # the advisory lock parking triggers wait on

# Every table a request of the fault tests may write.
TABLES = (
    "users",
    "sessions",
    "audit_events",
    "jobs",
    "email_tokens",
    "security_notices",
    "user_keys",
    "captures",
    "consent_records",
    "privacy_requests",
    "erasure_tombstones",
)


class BlackHole:
    """A TCP listener that accepts every connection and never answers: a hung server."""

    def __init__(self) -> None:
        self.port = free_port()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            self._held.append(client)  # read nothing, answer nothing

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.close()
        for sock in self._held:
            with contextlib.suppress(OSError):
                sock.close()
        self._thread.join(timeout=5)


class TcpProxy:
    """Forwards 127.0.0.1:port to `upstream`; `cut()` drops every connection and the listener."""

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.rpartition(":")
        self.upstream = (host or "127.0.0.1", int(port))
        self.port = free_port()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._spawn(self._accept)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # listener closed by cut()
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            self._spawn(self._pump, client, server, True)
            self._spawn(self._pump, server, client, False)

    def _pump(self, source: socket.socket, sink: socket.socket, upstream: bool) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if not self.forward(data, source, sink, upstream):
                    break
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def forward(
        self, data: bytes, source: socket.socket, sink: socket.socket, upstream: bool
    ) -> bool:
        """Pass `data` on (`upstream`: towards the store); False drops the connection.
        Subclasses misbehave here."""
        sink.sendall(data)
        return True

    def cut(self) -> None:
        """The store disappears: nothing listens, every open connection is reset."""
        # shutdown() wakes the thread blocked in accept(); close() alone does not.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self._threads:
            thread.join(timeout=5)


def row_counts(app: Flask) -> dict[str, int]:
    """Rows per table, read outside the app's session."""
    from irisvue.extensions import db

    with app.app_context(), db.engine.connect() as conn:
        counts = {name: conn.scalar(sa.text(f'SELECT count(*) FROM "{name}"')) for name in TABLES}
    return counts


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


@contextlib.contextmanager
def parking_trigger(
    url: str,
    table: str,
    when: str,
    *,
    ready: Callable[[], None] | None = None,
    events: str = "INSERT OR UPDATE",
) -> Iterator[sa.Connection]:
    """A test-only trigger that parks writes to `table` matching `when` on an advisory lock.

    `events` may be any of INSERT, UPDATE, DELETE (`when` may use OLD for the last two).

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
                "RETURN COALESCE(NEW, OLD); END $$"  # OLD: a DELETE goes ahead too
            )
        )
        conn.execute(
            sa.text(
                f"CREATE TRIGGER {name} BEFORE {events} ON {table} FOR EACH ROW "
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


def kill_when_parked(holder: sa.Connection, proc: subprocess.Popen, log_path: Path) -> None:
    """SIGKILL the worker `proc` once its backend waits at the parking trigger, then end
    that backend (the dead worker's transaction goes with it) and lift the lock."""

    def alive() -> None:
        assert proc.poll() is None, log_path.read_text()[-2000:]

    try:
        backend = parked_backend(holder, alive=alive)
    finally:
        kill_group(proc)
    holder.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
    unpark(holder)


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
