"""Baselines under the same gunicorn settings as the app (bench/health.py, auth.py, ab.py).

`GET /`: a bare Flask "hello" (no middleware, no database, no logging beyond
gunicorn's), the baseline every SPEC §7 ratio is taken against.

`GET /floor`: the least any database-backed authenticated read can do on
gunicorn + Flask: hello plus one indexed query by primary key on a
PostgreSQL connection kept per thread (autocommit: one round trip, no pool, no
ORM, no token check) and a small JSON answer. bench/auth.py measures it beside
`/api/v1/auth/me` to show what part of /me's latency is the platform's.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from flask import Flask, jsonify

app = Flask(__name__)
_local = threading.local()


@app.get("/")
def hello() -> str:
    """Hello, World!"""
    return "Hello, World!"


def _connection() -> Any:
    conn = getattr(_local, "conn", None)
    if conn is None:
        import psycopg2

        url = os.environ["DATABASE_URL"].replace("postgresql+psycopg2://", "postgresql://")
        conn = _local.conn = psycopg2.connect(url)
        conn.autocommit = True
    return conn


@app.get("/floor")
def floor() -> Any:
    """One indexed row from PostgreSQL, as JSON."""
    with _connection().cursor() as cur:
        cur.execute("SELECT id::text, email, created_at::text FROM users ORDER BY id LIMIT 1")
        row = cur.fetchone()
    return jsonify({"id": row[0], "email": row[1], "created_at": row[2]})
