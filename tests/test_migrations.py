"""Migrations are code: upgrade from empty, downgrade to base, and no drift from the models."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import flask_migrate
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from irisvue import create_app
from irisvue.extensions import db


@pytest.fixture
def empty_postgres(stack, stack_env) -> Iterator[str]:
    url = sa.make_url(stack.database_url)
    name = f"irisvue_migrations_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(
        url.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _drift(app) -> list:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


def _tables(app) -> set[str]:
    return set(sa.inspect(db.engine).get_table_names())


def _round_trip(app) -> None:
    with app.app_context():
        assert _tables(app) <= {"alembic_version"}
        flask_migrate.upgrade()
        assert {t.name for t in db.metadata.sorted_tables} <= _tables(app)
        assert _drift(app) == [], "models and migrations disagree: add a revision"

        flask_migrate.downgrade(revision="base")
        assert _tables(app) <= {"alembic_version"}

        flask_migrate.upgrade()  # and back up again: downgrades leave nothing behind
        assert _drift(app) == []
        db.engine.dispose()


def test_postgresql_upgrade_downgrade_and_no_drift(empty_postgres, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", empty_postgres)
    _round_trip(create_app())


def test_sqlite_upgrade_downgrade_and_no_drift(stack_env, tmp_path, monkeypatch):
    """The embedded development stack runs the same revisions on SQLite."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'migrations.sqlite3'}")
    _round_trip(create_app())


def test_a_model_change_without_a_revision_is_detected(empty_postgres, monkeypatch):
    """The drift check can fail: an extra column in the models shows up as a difference."""
    monkeypatch.setenv("DATABASE_URL", empty_postgres)
    app = create_app()
    with app.app_context():
        flask_migrate.upgrade()
        metadata = sa.MetaData()
        for table in db.metadata.sorted_tables:
            table.to_metadata(metadata)
        metadata.tables["users"].append_column(sa.Column("unmigrated", sa.Integer()))
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diffs = compare_metadata(context, metadata)
        db.engine.dispose()
    assert any(d[0] == "add_column" and d[3].name == "unmigrated" for d in diffs), diffs
