"""The per-request token check runs on its own engine of autocommit connections.

It reads committed state with one statement and no transaction: nothing may be
left open between requests, and a revocation committed by any other
connection is seen by the very next request.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import sqlalchemy as sa
from flask import Flask
from sqlalchemy import event

from irisvue import create_app
from irisvue.dbpool import _check_on_checkout
from irisvue.extensions import REVOCATION_BIND, db
from tests.support.users import bearer

ME = "/api/v1/auth/me"


@contextlib.contextmanager
def _another_connection(app: Flask) -> Iterator[sa.Connection]:
    """A connection to the app's database that is none of the app's own."""
    with app.app_context():
        url = db.engine.url
    other = sa.create_engine(url)
    try:
        with other.begin() as conn:
            yield conn
    finally:
        other.dispose()


def test_the_check_uses_autocommit_connections_and_leaves_no_transaction(app, client, register):
    body = register(client)
    for _ in range(5):
        assert client.get(ME, headers=bearer(body["access_token"])).status_code == 200

    with app.app_context():
        engine = db.engines[REVOCATION_BIND]
        assert engine is not db.engine
        assert engine.pool.checkedin() == 1  # the five checks took turns on one connection
        with engine.connect() as conn:
            assert conn.connection.dbapi_connection.autocommit is True
    with _another_connection(app) as conn:
        in_transaction = conn.scalars(
            sa.text(
                "SELECT state FROM pg_stat_activity WHERE application_name = 'irisvue'"
                " AND datname = current_database() AND state LIKE 'idle in transaction%'"
            )
        ).all()
    assert in_transaction == []


def test_a_revocation_committed_elsewhere_is_refused_on_the_next_request(app, client, register):
    body = register(client)
    headers = bearer(body["access_token"])
    assert client.get(ME, headers=headers).status_code == 200  # its connection now pooled

    with _another_connection(app) as conn:
        conn.execute(sa.text("UPDATE sessions SET revoked_at = now()"))

    response = client.get(ME, headers=headers)
    assert response.status_code == 401


def test_the_pool_has_a_connection_per_request_thread(stack_env, monkeypatch):
    monkeypatch.setenv("GUNICORN_THREADS", "5")
    app = create_app()
    with app.app_context():
        pool = db.engines[REVOCATION_BIND].pool
        assert (pool.size(), pool._max_overflow) == (5, 5)
        for engine in db.engines.values():
            engine.dispose()


def test_every_engine_is_watched_for_server_hangups(app):
    # A restarted server must be noticed at checkout on this engine too
    # (tests/faults/test_postgres.py restarts PostgreSQL between requests).
    with app.app_context():
        for key, engine in db.engines.items():
            assert event.contains(engine, "checkout", _check_on_checkout), key
