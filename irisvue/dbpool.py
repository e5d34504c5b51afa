"""Pooled PostgreSQL connections checked for a hang-up without a round trip.

`pool_pre_ping` sends `SELECT 1` on every checkout: one more database round
trip on every request. An idle PostgreSQL connection receives nothing from the
server unless the server is closing it (a restart or `pg_terminate_backend`
sends a FATAL ErrorResponse, then closes the socket), so a connection whose
socket is readable or hung up at checkout is dead. `poll()` with a zero timeout
asks the kernel that, in microseconds; the pool then discards every connection
opened before that moment (they all went with the same server) and opens a
fresh one, as pre-ping would. A connection cut without any packet (a network
partition) is found by its first statement instead, which fails with
`database_unavailable` (503) and invalidates the pool, as with pre-ping, whose
`SELECT 1` would hang on it the same way.
"""

from __future__ import annotations

import select
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine

_HUNG_UP = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP | select.POLLNVAL


def _hung_up(dbapi_connection: Any) -> bool:
    try:
        fileno = dbapi_connection.fileno()
    except Exception:  # noqa: BLE001 - a closed psycopg2 connection raises InterfaceError
        return True
    poller = select.poll()
    poller.register(fileno, _HUNG_UP)
    return bool(poller.poll(0))


def _check_on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    if getattr(dbapi_connection, "closed", 0) or _hung_up(dbapi_connection):
        raise exc.InvalidatePoolError("the server closed this pooled connection")


def watch_hangups(engine: Engine) -> None:
    """Replaces pre-ping for a PostgreSQL (psycopg2) engine; other engines are left alone."""
    if engine.dialect.name == "postgresql" and hasattr(select, "poll"):
        event.listen(engine, "checkout", _check_on_checkout)
