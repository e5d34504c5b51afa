"""The consent ledger as an attacker holding only database access would see it."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator

import sqlalchemy as sa
from flask import Flask

from irisvue.extensions import db

LEDGER_TABLES = ("consent_records", "consent_heads")


def tamper(app: Flask, sql: str, **params) -> None:
    """Runs `sql` with the ledger's triggers off, as the tables' owner could."""
    with app.app_context():
        for table in LEDGER_TABLES:
            db.session.execute(sa.text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        db.session.execute(sa.text(sql), params)
        for table in LEDGER_TABLES:
            db.session.execute(sa.text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
        db.session.commit()


@contextlib.contextmanager
def app_role_engine(database_url: str) -> Iterator[sa.Engine]:
    """An engine logged in as a fresh role shaped like the application's in production:
    every table privilege (TRUNCATE included), owner of nothing, member of nothing."""
    role = f"irisvue_app_{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(16)
    admin = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'"))
        conn.execute(sa.text(f"GRANT USAGE ON SCHEMA public TO {role}"))
        conn.execute(sa.text(f"GRANT ALL PRIVILEGES ON ALL TABLES IN SCHEMA public TO {role}"))
    url = sa.make_url(database_url).set(username=role, password=password)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP OWNED BY {role}"))
            conn.execute(sa.text(f"DROP ROLE {role}"))
        admin.dispose()
