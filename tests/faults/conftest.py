"""Fault-injection fixtures: a PostgreSQL of this module's own, cheap Argon2 for every test.

The helpers (TCP proxy, parking triggers, row counts) are in tests/support/faults.py.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import sqlalchemy as sa
from flask import Flask

from irisvue import create_app
from irisvue.extensions import db
from tests.support.faults import OwnPostgres
from tests.support.stack import reset_state


@pytest.fixture(autouse=True)
def _cheap_argon2(cheap_argon2: None) -> None:
    """Registrations and logins here test faults, not hashing cost."""


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
        # The stop above may end the postmaster pgserver started between its
        # is_running() check and its terminate(): psutil then finds it gone.
        with contextlib.suppress(psutil.NoSuchProcess):
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
